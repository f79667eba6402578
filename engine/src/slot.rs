//! Key placement: Redis Cluster hash slots and the slot → shard table.
//!
//! `slot = CRC16(key) mod 16384`, where only the part between the first
//! `{` and the next `}` is hashed if that part is non-empty (the hash tag),
//! exactly as Redis Cluster does, so keys sharing a tag share a shard. The
//! slot then maps to a shard through a 16384-entry table rather than
//! `slot mod N`, so that slots can later move between shards.

/// Number of hash slots.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster uses for slots. Every
/// request hashes its key: bit by bit this was 5% of a shard's time under
/// `redis-benchmark -P 16`, a byte at a time through one table still 6%
/// (each step waits for the last), so eight bytes go at a time through
/// eight tables whose lookups do not depend on one another (slicing-by-8).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let [hi, lo] = crc.to_be_bytes();
        crc = CRC16_TABLES[7][(c[0] ^ hi) as usize]
            ^ CRC16_TABLES[6][(c[1] ^ lo) as usize]
            ^ CRC16_TABLES[5][c[2] as usize]
            ^ CRC16_TABLES[4][c[3] as usize]
            ^ CRC16_TABLES[3][c[4] as usize]
            ^ CRC16_TABLES[2][c[5] as usize]
            ^ CRC16_TABLES[1][c[6] as usize]
            ^ CRC16_TABLES[0][c[7] as usize];
    }
    chunks.remainder().iter().fold(crc, |crc, &b| (crc << 8) ^ CRC16_TABLES[0][((crc >> 8) as u8 ^ b) as usize])
}

/// `CRC16_TABLES[k][b]`: the CRC16 register after byte `b` enters its top
/// byte and `k` zero bytes follow (polynomial 0x1021). Table 0 is the
/// classic byte-at-a-time table.
const CRC16_TABLES: [[u16; 256]; 8] = {
    let mut t = [[0u16; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// The part of a key that is hashed: the hash tag if there is a non-empty one.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of a key.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS as u16
}

/// Which shard owns each slot.
#[derive(Debug, Clone)]
pub struct SlotMap {
    owner: Box<[u16; SLOTS]>,
    shards: usize,
}

impl SlotMap {
    /// Slots spread over `shards` shards as `slot mod shards`.
    pub fn new(shards: usize) -> SlotMap {
        assert!(shards > 0 && shards <= u16::MAX as usize);
        let mut owner = Box::new([0u16; SLOTS]);
        for (slot, o) in owner.iter_mut().enumerate() {
            *o = (slot % shards) as u16;
        }
        SlotMap { owner, shards }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The shard that owns `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.owner[key_slot(key) as usize] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_cluster() {
        // Values from Redis Cluster (CLUSTER KEYSLOT).
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn table_crc_matches_the_bitwise_definition() {
        let bitwise = |bytes: &[u8]| {
            let mut crc: u16 = 0;
            for &b in bytes {
                crc ^= (b as u16) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
                }
            }
            crc
        };
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            assert_eq!(crc16(&bytes), bitwise(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn tagged_keys_share_a_shard() {
        let m = SlotMap::new(7);
        assert_eq!(m.shard_of(b"{t}a"), m.shard_of(b"{t}b"));
        assert!(m.shard_of(b"anything") < 7);
    }
}
