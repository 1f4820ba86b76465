"""The operator console's cross-area reads (docs/console.md). Like server.app it sits
above the areas; nothing but server.app imports it."""
