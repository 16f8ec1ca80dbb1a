// Package tracestore keeps the spans received on /v1/traces on local disk
// for a bounded time and size, finds a whole trace by ID, searches trace
// summaries, and optionally forwards every span to another OTLP/HTTP
// receiver (Tempo, Jaeger, an OpenTelemetry Collector).
//
// # Storage
//
// Spans live in append-only segment files (NNNNNNNNNN.seg) in one
// directory. Each Append call becomes one frame: a length, a CRC-32C and a
// payload holding one chunk per trace in the batch. A chunk is the trace's
// spans of that batch as an OTLP protobuf TracesData message, behind a small
// header with what search needs (trace ID, start, end, span count, error/ok
// flags, root service and span name, services). See record.go for the
// layout.
//
// The index lives in memory: trace ID -> chunk locations plus the trace
// summary. Open rebuilds it by reading only the chunk headers of every
// segment; no protobuf is decoded, so a restart costs one sequential read of
// the directory. A by-ID lookup reads and decodes only that trace's chunks
// (one per batch the trace's spans arrived in, typically one per service).
// Search scans the index summaries; it never touches the disk.
//
// # Durability
//
// Append returns after the frame is handed to the kernel with one write(2)
// (no user-space buffer), so spans accepted before the process crashes are
// in the file. Every segment written since its last fsync (the active one,
// and one just sealed) is fsynced once a second by Run, outside the store's
// lock so that appends never wait for the disk, and on Close: an
// operating-system crash or power loss can lose the last second. A failed
// fsync is logged, counted (burnrate_collector_trace_store_fsync_failures_total)
// and retried at the next second until it succeeds. A frame torn by a crash or damaged fails its length or CRC
// check; Open logs and counts it, resumes at the next offset where a whole
// frame checks out (so one damaged frame hides only itself), and writes on
// in a new segment. A file unreadable from its first frame is set aside as
// .corrupt and deleted once older than the retention. Damage never makes
// Open fail.
//
// # Retention
//
// The active segment is sealed at MaxBytes/16 (64 KiB..256 MiB) or after
// Retention/12 (1m..2h), so retention deletes whole files: by age when a
// segment's newest batch is older than Retention (checked every 10s), by
// size, at once on Append, oldest first while the files exceed MaxBytes.
// Ages are receive times, not span times: a client with a skewed clock
// cannot make its spans outlive retention or vanish at once.
//
// # Why not SQLite, why not Tempo in process
//
// SQLite would cost a B-tree insert per span (or per trace row) inside a
// write transaction, a second copy of the data in its WAL, and VACUUM to give
// space back; deleting a whole old segment file is free by comparison, and
// the access pattern (append, look up by one key, drop the oldest) needs no
// query planner. Tempo's storage (tempodb with its WAL, blocks, bloom filters
// and Parquet) is built for object storage and a fleet of components; linked
// into this binary it would bring hundreds of dependencies and its own
// compactor and configuration for what one machine needs. Teams that outgrow
// this store forward to a real Tempo or Jaeger (Config.Forward) and keep the
// local copy for exemplar links.
//
// # Limits
//
// The index is in memory: 270-290 bytes per trace of 5 spans from one
// batch (BenchmarkIndexMemory, bench/tracestore), plus about 100 per
// further batch a trace appears in and 16 per chunk for the segment's trace
// list. The default 1 GiB of segments (about 2.4 million such spans at 445
// bytes each on disk) costs roughly 140 MiB of heap. Search is a scan of
// the summaries, kept as values in one slice: 1-5 ms per 200k traces. A
// by-ID lookup is one pread and one protobuf decode per chunk: p50 about
// 11 us, p99 0.1-0.4 ms with 1M spans stored. Append runs at 77k-250k
// spans/s on the 2-core machine (goal 50k; the spread is the machine's
// load). A CPU profile puts most of it in copying each trace's spans out of
// the batch and in the garbage collection that causes, then in protobuf
// encoding; the write(2) under the store's one mutex is about 5%. See
// bench/README.md ("Trace store").
//
// The forward queue is in memory, bounded in spans (forward.queue_size)
// and in encoded bytes (forward.queue_bytes, 64 MiB): what does not fit is
// dropped and counted by reason. A clean stop keeps forwarding what is
// queued for up to a second, inside the process's stop budget; what is
// left then, and everything queued at a crash, is not forwarded (it is
// still in the local store).
package tracestore
