"""Operator accounts, console sessions, roles and the audit log (docs/console.md).
Knows no area: the areas' admin RPCs ask `roles` who may do what."""
