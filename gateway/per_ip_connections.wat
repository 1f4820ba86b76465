;; Per-client-IP connection limit for the public door (docs/edge.md: Per client IP).
;; A proxy-wasm (ABI 0.2.1) network filter: stock Envoy has no per-downstream-IP
;; connection limit, but it runs Wasm network filters and gives them process-wide shared
;; data with compare-and-swap. Each connection adds one to its source address's count when
;; it opens and takes one away when it closes; a connection that makes the count exceed the
;; limit (the plugin configuration, a decimal number) is closed at once. Every opened
;; connection is counted and uncounted exactly once, refused ones included, so no
;; per-connection state is kept. Keys are the address without the port; an address's entry
;; stays (at 0) once seen (the ABI has no delete).
;; Built by `make protos` (server/platform/wasm_build.py) into gateway/per_ip_connections.wasm.
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_close_stream" (func $close_stream (param i32) (result i32)))
  (memory (export "memory") 2)
  ;; 16: the property path source.address (tokens separated by NUL)
  (data (i32.const 16) "source\00address")
  ;; 64: returned pointer, 68: returned size, 72: cas, 76: the value to store
  ;; 128..383: the key ("ip:" and the address without its port)
  (data (i32.const 128) "ip:")
  (global $limit (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 1024))

  (func (export "proxy_abi_version_0_2_1"))

  ;; The host's answers (properties, shared data) are copied into memory it asks for here;
  ;; everything is dropped at the start of the next callback.
  (func $alloc (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.lt_s
              (memory.grow (i32.shr_u (i32.add (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
                                               (i32.const 65535)) (i32.const 16)))
              (i32.const 0))
          (then unreachable))))
    (local.get $p))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_upstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_upstream_connection_close") (param i32 i32))

  ;; The plugin configuration: the limit, in decimal. Anything else fails the configuration.
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (local $p i32) (local $end i32) (local $c i32) (local $n i32)
    (global.set $heap (i32.const 1024))
    (if (i32.or (i32.eqz (local.get $size)) (i32.gt_u (local.get $size) (i32.const 9))) (then (return (i32.const 0))))
    (if (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 64) (i32.const 68))
      (then (return (i32.const 0))))
    (local.set $p (i32.load (i32.const 64)))
    (local.set $end (i32.add (local.get $p) (i32.load (i32.const 68))))
    (block $done
      (loop $digits
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
        (if (i32.gt_u (local.get $c) (i32.const 9)) (then (return (i32.const 0))))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $c)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $digits)))
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (global.set $limit (local.get $n))
    (i32.const 1))

  ;; Writes "ip:<address>" at 128 and returns its length; 0 when the address is unknown.
  (func $key (result i32)
    (local $p i32) (local $len i32) (local $i i32)
    (if (call $get_property (i32.const 16) (i32.const 14) (i32.const 64) (i32.const 68))
      (then (return (i32.const 0))))
    (local.set $p (i32.load (i32.const 64)))
    (local.set $len (i32.load (i32.const 68)))
    ;; drop ":port" (the last colon; "[::1]:80" keeps its brackets)
    (local.set $i (local.get $len))
    (block $found
      (loop $back
        (br_if $found (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $found (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.const 58)))
        (br $back)))
    (if (i32.eqz (local.get $i)) (then (local.set $i (local.get $len))))
    (if (i32.gt_u (local.get $i) (i32.const 250)) (then (return (i32.const 0))))
    (memory.copy (i32.const 131) (local.get $p) (local.get $i))
    (i32.add (local.get $i) (i32.const 3)))

  ;; Adds delta (+1, -1) to the key's count (compare-and-swap, retried on a race with the
  ;; other workers; never below 0) and returns the new count.
  (func $adjust (param $keylen i32) (param $delta i32) (result i32)
    (local $r i32) (local $n i32)
    (loop $retry
      (local.set $r (call $get_shared (i32.const 128) (local.get $keylen) (i32.const 64) (i32.const 68) (i32.const 72)))
      (if (i32.eq (local.get $r) (i32.const 1))  ;; NotFound: the address's first connection
        (then
          (local.set $n (select (i32.const 1) (i32.const 0) (i32.gt_s (local.get $delta) (i32.const 0))))
          (i32.store (i32.const 76) (local.get $n))
          (drop (call $set_shared (i32.const 128) (local.get $keylen) (i32.const 76) (i32.const 4) (i32.const 0)))
          (return (local.get $n))))
      (if (local.get $r) (then (return (i32.const 0))))
      (local.set $n (i32.const 0))
      (if (i32.eq (i32.load (i32.const 68)) (i32.const 4))
        (then (local.set $n (i32.load (i32.load (i32.const 64))))))
      (local.set $n (i32.add (local.get $n) (local.get $delta)))
      (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0))))
      (i32.store (i32.const 76) (local.get $n))
      (if (i32.eq (call $set_shared (i32.const 128) (local.get $keylen) (i32.const 76) (i32.const 4) (i32.load (i32.const 72)))
                  (i32.const 8))  ;; CasMismatch: another worker changed it
        (then (global.set $heap (i32.const 1024)) (br $retry))))
    (local.get $n))

  (func (export "proxy_on_new_connection") (param $ctx i32) (result i32)
    (local $keylen i32)
    (global.set $heap (i32.const 1024))
    (local.set $keylen (call $key))
    (if (i32.eqz (local.get $keylen)) (then (return (i32.const 0))))
    (if (i32.gt_u (call $adjust (local.get $keylen) (i32.const 1)) (global.get $limit))
      (then
        (drop (call $close_stream (i32.const 2)))  ;; the downstream connection
        (return (i32.const 1))))
    (i32.const 0))

  (func (export "proxy_on_downstream_connection_close") (param $ctx i32) (param $peer i32)
    (local $keylen i32)
    (global.set $heap (i32.const 1024))
    (local.set $keylen (call $key))
    (if (local.get $keylen) (then (drop (call $adjust (local.get $keylen) (i32.const -1)))))))
