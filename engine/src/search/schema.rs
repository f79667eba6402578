//! An index definition (what FT.CREATE says) and its bytes in the log.
//!
//! Encoding, little-endian, byte strings as u32 length + bytes:
//! `name, n_prefixes, prefix*, flags u8 (bit 0: custom stop-words),
//! [n_stop, word*], score f64 bits u64, n_fields, field*`, where a field is
//! `name, alias, kind u8 (0 text, 1 tag, 2 numeric), flags u8 (bit 0
//! sortable, bit 1 noindex, bit 2 nostem, bit 3 case-sensitive), weight f64
//! bits u64, separator u8`.

use crate::codec::{DecodeError, Reader};

/// What a field holds and how it is indexed.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Full text.
    Text,
    /// Exact values split at a separator.
    Tag,
    /// A number.
    Numeric,
}

/// One field of the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The hash field it reads.
    pub name: Vec<u8>,
    /// The name queries use (AS alias; the field name when absent).
    pub alias: String,
    /// What it holds.
    pub kind: Kind,
    /// SORTABLE: the value is kept for SORTBY.
    pub sortable: bool,
    /// NOINDEX: not searchable (only sortable).
    pub noindex: bool,
    /// NOSTEM (text).
    pub nostem: bool,
    /// CASESENSITIVE (tag).
    pub case_sensitive: bool,
    /// WEIGHT (text).
    pub weight: f64,
    /// SEPARATOR (tag).
    pub separator: u8,
}

impl Field {
    /// A field of `kind` with RediSearch's defaults.
    pub fn new(name: &[u8], kind: Kind) -> Field {
        Field {
            name: name.to_vec(),
            alias: String::from_utf8_lossy(name).into_owned(),
            kind,
            sortable: false,
            noindex: false,
            nostem: false,
            case_sensitive: false,
            weight: 1.0,
            separator: b',',
        }
    }
}

/// An index definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The index name.
    pub name: String,
    /// Key prefixes it follows (empty: every hash).
    pub prefixes: Vec<Vec<u8>>,
    /// STOPWORDS; None: the default list.
    pub stopwords: Option<Vec<String>>,
    /// SCORE: the default document score.
    pub score: f64,
    /// The fields, in order (text fields are numbered in this order for field masks).
    pub fields: Vec<Field>,
}

impl Schema {
    /// Whether a key belongs to the index.
    pub fn follows(&self, key: &[u8]) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| key.starts_with(p))
    }

    /// The field queries call `alias`.
    pub fn field(&self, alias: &str) -> Option<(usize, &Field)> {
        self.fields.iter().enumerate().find(|(_, f)| f.alias == alias)
    }

    /// The bytes of this definition.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        put_bytes(&mut w, self.name.as_bytes());
        put_u32(&mut w, self.prefixes.len() as u32);
        self.prefixes.iter().for_each(|p| put_bytes(&mut w, p));
        w.push(u8::from(self.stopwords.is_some()));
        if let Some(s) = &self.stopwords {
            put_u32(&mut w, s.len() as u32);
            s.iter().for_each(|x| put_bytes(&mut w, x.as_bytes()));
        }
        w.extend_from_slice(&self.score.to_bits().to_le_bytes());
        put_u32(&mut w, self.fields.len() as u32);
        for f in &self.fields {
            put_bytes(&mut w, &f.name);
            put_bytes(&mut w, f.alias.as_bytes());
            w.push(match f.kind {
                Kind::Text => 0,
                Kind::Tag => 1,
                Kind::Numeric => 2,
            });
            w.push(u8::from(f.sortable) | u8::from(f.noindex) << 1 | u8::from(f.nostem) << 2 | u8::from(f.case_sensitive) << 3);
            w.extend_from_slice(&f.weight.to_bits().to_le_bytes());
            w.push(f.separator);
        }
        w
    }

    /// Reads a definition back.
    pub fn decode(bytes: &[u8]) -> Result<Schema, DecodeError> {
        let mut r = Reader::new(bytes);
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("an index name or alias is not UTF-8"));
        let name = text(r.bytes()?)?;
        let prefixes = (0..r.u32()?).map(|_| r.bytes().map(<[u8]>::to_vec)).collect::<Result<_, _>>()?;
        let stopwords = match r.u8()? {
            0 => None,
            _ => Some((0..r.u32()?).map(|_| text(r.bytes()?)).collect::<Result<_, _>>()?),
        };
        let score = f64::from_bits(r.u64()?);
        let mut fields = Vec::new();
        for _ in 0..r.u32()? {
            let name = r.bytes()?.to_vec();
            let alias = text(r.bytes()?)?;
            let kind = match r.u8()? {
                0 => Kind::Text,
                1 => Kind::Tag,
                2 => Kind::Numeric,
                _ => return Err(DecodeError::Invalid("unknown search field kind")),
            };
            let flags = r.u8()?;
            let weight = f64::from_bits(r.u64()?);
            let separator = r.u8()?;
            fields.push(Field {
                name,
                alias,
                kind,
                sortable: flags & 1 != 0,
                noindex: flags & 2 != 0,
                nostem: flags & 4 != 0,
                case_sensitive: flags & 8 != 0,
                weight,
                separator,
            });
        }
        r.finish()?;
        Ok(Schema { name, prefixes, stopwords, score, fields })
    }
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u32(w, b.len() as u32);
    w.extend_from_slice(b);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_reads_back_as_written() {
        let mut title = Field::new(b"title", Kind::Text);
        title.weight = 2.0;
        title.sortable = true;
        let mut tags = Field::new(b"tags", Kind::Tag);
        tags.separator = b';';
        tags.case_sensitive = true;
        let s = Schema {
            name: "idx".into(),
            prefixes: vec![b"doc:".to_vec()],
            stopwords: Some(vec!["foo".into()]),
            score: 0.5,
            fields: vec![title, tags, Field::new(b"n", Kind::Numeric)],
        };
        assert_eq!(Schema::decode(&s.encode()).unwrap(), s);
        let bytes = s.encode();
        assert!(Schema::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
