//! [`Outgoing`]: one encoded signal between an export's sink and its
//! publisher (the element of the buffer that [`ExportRoom`](super::ExportRoom)
//! waits on).

/// One encoded signal on its way to the stream.
pub(super) struct Outgoing {
    /// Its number, in the order the sink accepted it.
    pub number: u64,
    /// Shared: a republish and each publish clone it without copying.
    pub subject: async_nats::Subject,
    pub id: String,
    pub payload: bytes::Bytes,
}
