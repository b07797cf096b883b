//! Streaming output metering and truncation (SSE) and the non-streaming
//! equivalent.
