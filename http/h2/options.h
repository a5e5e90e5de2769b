// Limits of an HTTP/2 connection (both sides). Every one has a default; the proxy's config keys
// map onto them (docs/config.md, [servers.NAME.http2]).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace monolake::http::h2 {

struct Options {
  // SETTINGS_MAX_CONCURRENT_STREAMS we announce. A client opening more gets RST_STREAM
  // REFUSED_STREAM.
  uint32_t max_concurrent_streams = 100;
  // SETTINGS_INITIAL_WINDOW_SIZE we announce: how much of a body the peer may send on one
  // stream before we have handed it on (64 KiB).
  uint32_t initial_stream_window = 64 * 1024;
  // The connection's receive window (all streams together).
  uint32_t connection_window = 1024 * 1024;
  // SETTINGS_MAX_HEADER_LIST_SIZE: a larger request head gets 431, a larger response head 502.
  uint32_t max_header_list_size = 64 * 1024;
  // CONTINUATION frames after one HEADERS frame; more ends the connection.
  size_t max_continuations = 8;
  // Rapid Reset (CVE-2023-44487): RST_STREAM frames from the peer, as a token bucket (burst,
  // then per second). Exceeding it ends the connection with GOAWAY.
  uint64_t reset_burst = 1000;
  uint64_t reset_rate_per_sec = 33;
  // SETTINGS and PING frames (which each cost us an ACK) per second, beyond a burst of as many.
  uint32_t max_control_frames_per_sec = 1000;
  // SETTINGS ACK and PING ACK frames queued because the peer does not read them.
  size_t max_outbound_ack = 1000;
  // DATA or HEADERS frames carrying nothing (no payload, no END_STREAM) in a row.
  uint32_t max_consecutive_empty_frames = 10;
  // PRIORITY frames allowed: this many per stream the peer opened, plus this many.
  uint32_t max_priority_frames_per_stream = 100;
  // A request body longer than this gets 413 (before the handler) or RST_STREAM (mid-body).
  uint64_t max_request_body = uint64_t{1} << 30;
  // A connection with no open stream for this long gets GOAWAY and is closed.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(75);
  // Longest wait for the next piece of a body the peer is sending.
  std::chrono::nanoseconds read_body_timeout = std::chrono::seconds(60);
  // Longest a single write to the peer may take.
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(60);
  // Response bytes queued per stream before we stop reading the upstream body (back-pressure).
  size_t stream_send_buffer = 64 * 1024;
};

// The 24 bytes every HTTP/2 client connection starts with (RFC 9113 3.4).
inline constexpr char kClientPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr size_t kClientPrefaceSize = sizeof(kClientPreface) - 1;

}  // namespace monolake::http::h2
