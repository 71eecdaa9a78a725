//! [`SignalId`]: the CloudEvents `id` of a signal.

use super::Text;
use rand::Rng;
use rand::rngs::ThreadRng;
use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use uuid::Uuid;

/// Length of a hyphenated UUID: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
const UUID_LEN: usize = 36;

/// The `id` of a signal: a UUID (the default, generated as UUIDv7) or any
/// other text a producer chose.
///
/// Generated ids are UUIDs stored as 16 bytes, so making one allocates nothing
/// and, being v7, they sort by creation time: strictly increasing in the order
/// one thread makes them, and by timestamp (clock tick) across threads (see
/// [`SignalId::now_v7`]).
///
/// Equality and hashing follow the CloudEvents string value: a `Uuid` equals a
/// `Text` holding that UUID in canonical form (hyphenated, lowercase). Every id
/// inside a [`Signal`](super::Signal) is normalized (a canonical UUID string is
/// stored as the `Uuid` variant), which is what makes JSON round trips exact.
///
/// ```
/// use agentry::SignalId;
/// let id = SignalId::from("0190163d-8694-739b-aea5-966c26f8ad91");
/// assert!(id.as_uuid().is_some()); // canonical UUID text becomes the Uuid form
/// assert_eq!(id.to_string(), "0190163d-8694-739b-aea5-966c26f8ad91");
/// assert_eq!(SignalId::from("A234-1234-1234").as_uuid(), None);
/// ```
#[derive(Clone, Debug)]
pub enum SignalId {
    /// A UUID, written hyphenated and lowercase.
    Uuid(Uuid),
    /// Any other id text.
    Text(Text),
}

impl SignalId {
    /// A fresh UUIDv7 (RFC 9562), from a generator owned by the calling
    /// thread: no lock, no system call per id.
    ///
    /// - **Unique**: within a thread by construction; across threads (and
    ///   processes) with overwhelming probability, since besides the
    ///   millisecond timestamp every id carries 73 bits drawn from `rand`'s
    ///   thread-local CSPRNG (a counter seeded at random each millisecond,
    ///   and 32 fresh random bits).
    /// - **Strictly increasing per thread**: ids one thread makes sort in the
    ///   order it made them, even when the clock stalls or steps back (the
    ///   counter keeps counting under the last timestamp; RFC 9562 §6.2,
    ///   method 1).
    /// - **Across threads, ordered by timestamp only**: ids made by
    ///   different threads within the same clock tick sort in no particular
    ///   order, so they are not an arrival order across threads.
    /// - **Timestamp**: the coarse real-time clock on Linux, Android and
    ///   FreeBSD (the last kernel tick, typically 1-4 ms behind the precise
    ///   time), the system clock elsewhere.
    ///
    /// ```
    /// use agentry::SignalId;
    /// let (a, b) = (SignalId::now_v7(), SignalId::now_v7());
    /// assert!(a.as_uuid() < b.as_uuid());
    /// assert_eq!(a.as_uuid().map(|u| u.get_version_num()), Some(7));
    /// ```
    pub fn now_v7() -> Self {
        let id = V7_GENERATOR
            .try_with(|g| g.borrow_mut().next(unix_millis()))
            // Only while the thread's locals are being destroyed (a signal
            // built in a thread-local destructor): uuid's shared generator.
            .unwrap_or_else(|_| Uuid::now_v7());
        SignalId::Uuid(id)
    }

    /// `text` as an id, stored as the `Uuid` variant when it is a canonical
    /// (hyphenated, lowercase) UUID, so that equal id strings give equal ids.
    pub fn from_text(text: impl Into<Text>) -> Self {
        let text = text.into();
        match canonical_uuid(&text) {
            Some(uuid) => SignalId::Uuid(uuid),
            None => SignalId::Text(text),
        }
    }

    /// The UUID, when the id is one; lets callers use it as a compact key or
    /// read its v7 timestamp.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            SignalId::Uuid(u) => Some(*u),
            SignalId::Text(_) => None,
        }
    }

    /// The id text, when the id is not a UUID (a UUID has no stored text; use
    /// `Display` for either form).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            SignalId::Uuid(_) => None,
            SignalId::Text(t) => Some(t.as_str()),
        }
    }

    /// Calls `f` with the id's string form, formatting a UUID on the stack
    /// (no allocation).
    pub(crate) fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            SignalId::Uuid(u) => {
                let mut buf = [0u8; UUID_LEN];
                f(u.hyphenated().encode_lower(&mut buf))
            }
            SignalId::Text(t) => f(t.as_str()),
        }
    }
}

thread_local! {
    /// The calling thread's UUIDv7 generator (see [`SignalId::now_v7`]).
    static V7_GENERATOR: RefCell<V7Generator<ThreadRng>> = RefCell::new(V7Generator::new(rand::rng()));
}

/// Milliseconds since the Unix epoch by the coarse real-time clock (0
/// before the epoch): the time of the kernel's last tick (1-4 ms old,
/// `CLOCK_REALTIME_COARSE`), read from the vDSO in a few ns where a precise
/// `SystemTime::now` costs ~30 ns on the machines measured. RFC 9562 §6.1
/// lets an implementation trade timestamp precision ("altering, fuzzing or
/// smearing"); ordering within a thread comes from the counter, not the clock.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn unix_millis() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let millis = u64::try_from(t.tv_nsec / 1_000_000).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(millis)
}

/// Milliseconds since the Unix epoch by the system clock (0 before it).
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() * 1000 + u64::from(d.subsec_millis()))
}

/// Bits of the per-millisecond counter: the 12 of `rand_a` and the top 30 of
/// `rand_b` (RFC 9562 §6.2, method 1, as `uuid`'s `ContextV7` lays it out).
const COUNTER_BITS: u32 = 42;
/// The largest counter value.
const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;
/// Largest 48-bit `unix_ts_ms`.
const MILLIS_MAX: u64 = (1 << 48) - 1;

/// A monotonic UUIDv7 generator: the last timestamp used and the counter
/// under it. The clock reading is an argument of [`next`](Self::next), so
/// tests can stall it or turn it back.
struct V7Generator<R> {
    /// The `unix_ts_ms` of the last id (never decreases).
    millis: u64,
    /// The counter of the last id under `millis`.
    counter: u64,
    rng: R,
}

impl<R: Rng> V7Generator<R> {
    fn new(rng: R) -> Self {
        V7Generator {
            millis: 0,
            counter: 0,
            rng,
        }
    }

    /// The next id, at clock reading `now_millis`: a later millisecond
    /// reseeds the counter at random with its top bit clear (room for 2^41
    /// ids that millisecond); the same or an earlier one keeps the last
    /// timestamp and counts on; an overflowing counter moves the timestamp on
    /// by one millisecond and reseeds.
    fn next(&mut self, now_millis: u64) -> Uuid {
        let now_millis = now_millis.min(MILLIS_MAX);
        if now_millis > self.millis {
            self.millis = now_millis;
            self.counter = self.seed();
        } else if self.counter < COUNTER_MAX {
            self.counter += 1;
        } else {
            // 2^41 ids or more within one millisecond, or a clock held back:
            // borrow the next millisecond (the RFC's advice), saturating at
            // the end of the 48-bit range (in the year 10889).
            self.millis = (self.millis + 1).min(MILLIS_MAX);
            self.counter = self.seed();
        }
        let random = self.rng.next_u64() & 0xffff_ffff;
        // | unix_ts_ms (48) | ver 0111 | counter[41..30] (12) |
        let high = (self.millis << 16) | (0x7 << 12) | (self.counter >> 30);
        // | var 10 | counter[29..0] (30) | random (32) |
        let low = (0b10 << 62) | ((self.counter & ((1 << 30) - 1)) << 32) | random;
        Uuid::from_u64_pair(high, low)
    }

    /// A random counter start with the top bit clear.
    fn seed(&mut self) -> u64 {
        self.rng.next_u64() & (COUNTER_MAX >> 1)
    }
}

/// The UUID in `s` if `s` is exactly its canonical form (36 bytes, hyphenated,
/// lowercase): only then does re-encoding give back the same string.
fn canonical_uuid(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    if b.len() != UUID_LEN {
        return None;
    }
    let shape_ok = b.iter().enumerate().all(|(i, &c)| match i {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
    });
    if !shape_ok {
        return None;
    }
    Uuid::try_parse(s).ok()
}

impl PartialEq for SignalId {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SignalId::Uuid(a), SignalId::Uuid(b)) => a == b,
            (SignalId::Text(a), SignalId::Text(b)) => a == b,
            (SignalId::Uuid(u), SignalId::Text(t)) | (SignalId::Text(t), SignalId::Uuid(u)) => {
                canonical_uuid(t) == Some(*u)
            }
        }
    }
}

impl Eq for SignalId {}

impl Hash for SignalId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hash the string form, so the Uuid and Text forms of one id (equal
        // by `PartialEq`) hash alike.
        self.with_str(|s| s.hash(state));
    }
}

impl fmt::Display for SignalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl From<Uuid> for SignalId {
    fn from(u: Uuid) -> Self {
        SignalId::Uuid(u)
    }
}

impl From<Text> for SignalId {
    fn from(t: Text) -> Self {
        SignalId::from_text(t)
    }
}

impl From<&'static str> for SignalId {
    fn from(s: &'static str) -> Self {
        SignalId::from_text(s)
    }
}

impl From<String> for SignalId {
    fn from(s: String) -> Self {
        SignalId::from_text(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash(id: &SignalId) -> u64 {
        let mut h = DefaultHasher::new();
        id.hash(&mut h);
        h.finish()
    }

    fn generator() -> V7Generator<ThreadRng> {
        V7Generator::new(rand::rng())
    }

    fn millis_of(u: Uuid) -> u64 {
        (u.as_u128() >> 80) as u64
    }

    #[test]
    fn generated_ids_are_v7_with_the_rfc_variant_and_the_clock_time() {
        let before = unix_millis();
        let id = SignalId::now_v7().as_uuid().unwrap();
        let after = unix_millis();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_version(), Some(uuid::Version::SortRand));
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert!((before..=after).contains(&millis_of(id)), "{id}");
        // The coarse clock lags the precise one by at most a tick or two.
        let precise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(millis_of(id) <= precise + 1, "{id} vs {precise}");
        assert!(
            precise.saturating_sub(millis_of(id)) < 1_000,
            "{id} vs {precise}"
        );
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, millis_of(id) / 1000);
        // Canonical text parses back to the same id.
        assert_eq!(Uuid::parse_str(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn ids_are_unique_across_threads_and_strictly_increasing_per_thread() {
        const THREADS: usize = 8;
        const IDS: usize = 20_000;
        let per_thread: Vec<Vec<Uuid>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        (0..IDS)
                            .map(|_| SignalId::now_v7().as_uuid().unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all = std::collections::HashSet::new();
        for ids in &per_thread {
            for pair in ids.windows(2) {
                assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
            }
            for id in ids {
                assert_eq!(id.get_version_num(), 7);
                assert!(all.insert(*id), "duplicate {id}");
            }
        }
        assert_eq!(all.len(), THREADS * IDS);
    }

    #[test]
    fn a_stalled_clock_keeps_ids_increasing_under_the_same_timestamp() {
        let mut g = generator();
        let mut last = g.next(1_000);
        for _ in 0..100_000 {
            let id = g.next(1_000);
            assert!(id > last, "{id} after {last}");
            assert_eq!(id.get_version_num(), 7);
            last = id;
        }
        // A burst may have borrowed a millisecond or two only on overflow,
        // which a random start below 2^41 does not reach in 100,000 ids.
        assert_eq!(millis_of(last), 1_000);
    }

    #[test]
    fn a_clock_stepping_back_keeps_ids_increasing() {
        let mut g = generator();
        let a = g.next(2_000);
        let b = g.next(1_500);
        let c = g.next(0);
        let d = g.next(2_001);
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!([a, b, c, d].map(millis_of), [2_000, 2_000, 2_000, 2_001]);
    }

    #[test]
    fn counter_overflow_moves_the_timestamp_on() {
        let mut g = generator();
        let a = g.next(7);
        g.counter = COUNTER_MAX - 1;
        let b = g.next(7);
        assert_eq!((millis_of(b), g.counter), (7, COUNTER_MAX));
        let c = g.next(7);
        assert_eq!(millis_of(c), 8, "the overflow borrows the next millisecond");
        assert!(g.counter <= COUNTER_MAX >> 1, "and reseeds below 2^41");
        let d = g.next(8);
        let e = g.next(9);
        assert!(a < b && b < c && c < d && d < e, "{a} {b} {c} {d} {e}");
        assert_eq!([d, e].map(millis_of), [8, 9]);
    }

    #[test]
    fn the_counter_sits_in_rand_a_and_the_top_of_rand_b() {
        let mut g = generator();
        let a = g.next(42);
        let counter = g.counter;
        let bits = a.as_u128();
        assert_eq!((bits >> 64) as u64 & 0xfff, counter >> 30);
        assert_eq!(
            (bits >> 32) as u64 & ((1 << 30) - 1),
            counter & ((1 << 30) - 1)
        );
        assert_eq!(bits >> 62 & 0b11, 0b10, "variant");
        assert!(
            counter <= COUNTER_MAX >> 1,
            "a fresh millisecond seeds below 2^41"
        );
    }

    #[test]
    fn only_canonical_uuid_text_becomes_the_uuid_form() {
        let canonical = "0190163d-8694-739b-aea5-966c26f8ad91";
        assert!(SignalId::from(canonical).as_uuid().is_some());
        for other in [
            "0190163D-8694-739B-AEA5-966C26F8AD91",
            "0190163d8694739baea5966c26f8ad91",
            "{0190163d-8694-739b-aea5-966c26f8ad91}",
            "urn:uuid:0190163d-8694-739b-aea5-966c26f8ad91",
            "0190163d-8694-739b-aea5-966c26f8ad9g",
            "0190163d+8694-739b-aea5-966c26f8ad91",
            "",
        ] {
            assert_eq!(SignalId::from(other).as_text(), Some(other), "{other}");
        }
    }

    #[test]
    fn uuid_and_text_forms_of_one_id_are_equal_and_hash_alike() {
        let u = Uuid::now_v7();
        let a = SignalId::Uuid(u);
        let b = SignalId::Text(Text::from(u.to_string()));
        assert_eq!(a, b);
        assert_eq!(b, a);
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(a, SignalId::Text(Text::from(u.to_string().to_uppercase())));
        assert_eq!(a.to_string(), u.hyphenated().to_string());
        assert_eq!(SignalId::from("x").to_string(), "x");
    }
}
