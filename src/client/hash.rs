//! The checksum of the echo: the client hashes what it sends and what
//! comes back, and compares the two when all of the echo is back.

/// The hash of a stream, fed piece by piece: eight 64-bit FNV-1a hashes
/// side by side, byte number `i` of the stream going into hash `i % 8`.
/// Each is plain FNV-1a, a byte per step, `hash = (hash ^ byte) * prime`;
/// eight of them let the processor do the multiplications of eight bytes
/// together instead of one after the other, so hashing keeps up with the
/// transfer. Where a byte goes depends on its place in the stream, not on
/// how the stream was cut, so the chunks sent and the chunks received (cut
/// elsewhere by TCP) compare. A step can be undone for a known byte, so
/// two streams of the same length that differ in one byte always hash
/// differently.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a {
    lanes: [u64; 8],
    /// Bytes hashed so far.
    len: u64,
}

impl Fnv1a {
    /// The hash of nothing (FNV's offset basis, in every lane).
    pub const START: Fnv1a = Fnv1a { lanes: [0xcbf2_9ce4_8422_2325; 8], len: 0 };
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// Feeds `bytes`, the next piece of the stream.
    pub fn add(&mut self, mut bytes: &[u8]) {
        // A byte at a time up to a place that is a multiple of 8...
        while !self.len.is_multiple_of(8) {
            let Some((&byte, rest)) = bytes.split_first() else { return };
            self.step(byte);
            bytes = rest;
        }
        // ...then eight at a time, one into each lane.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            for (lane, &byte) in self.lanes.iter_mut().zip(word) {
                *lane = (*lane ^ u64::from(byte)).wrapping_mul(Fnv1a::PRIME);
            }
        }
        self.len += (bytes.len() - words.remainder().len()) as u64;
        for &byte in words.remainder() {
            self.step(byte);
        }
    }

    fn step(&mut self, byte: u8) {
        let lane = &mut self.lanes[(self.len % 8) as usize];
        *lane = (*lane ^ u64::from(byte)).wrapping_mul(Fnv1a::PRIME);
        self.len += 1;
    }
}

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a::START
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_in_pieces(stream: &[u8], piece: usize) -> Fnv1a {
        let mut hash = Fnv1a::START;
        for part in stream.chunks(piece) {
            hash.add(part);
        }
        hash
    }

    #[test]
    fn the_hash_does_not_depend_on_how_the_stream_was_cut() {
        let stream: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = hash_in_pieces(&stream, stream.len());
        for piece in [1, 3, 7, 8, 13, 4096] {
            assert!(hash_in_pieces(&stream, piece) == whole, "pieces of {piece}");
        }
    }

    #[test]
    fn one_changed_byte_changes_the_hash() {
        let stream = vec![b'a'; 100];
        let whole = hash_in_pieces(&stream, 100);
        for at in 0..stream.len() {
            let mut changed = stream.clone();
            changed[at] = b'A';
            assert!(hash_in_pieces(&changed, 9) != whole, "byte {at}");
        }
        // The one-byte FNV-1a of a known test vector, in lane 0.
        let mut one = Fnv1a::START;
        one.add(b"a");
        assert_eq!(one.lanes[0], 0xaf63_dc4c_8601_ec8c);
    }
}
