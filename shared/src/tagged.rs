//! Reading an internally tagged enum (`{"type":"...", fields}`) with its `type` first,
//! straight from the stream.
//!
//! serde's derive for `#[serde(tag = "type")]` reads the whole object into a buffer (its
//! private `Content`) before it looks at the tag, and then deserializes the variant from that
//! buffer: the code for every type inside a [`crate::ServerMsg`] is then made for that buffer
//! as well. In the dashboard's wasm, reading without it saved 88 KiB of 716 (26 KiB gzip).
//! The lab writes `type` first in every object it sends (serde's serializer writes the tag
//! before the fields, and the hub's hand-written JSON does the same), so the dashboard reads
//! the tag first and the fields without a buffer.
//!
//! On wasm32 (the dashboard) [`crate::ServerMsg`] and [`crate::EventKind`] deserialize this
//! way, and an object whose `type` is not its first key is refused with an error that says
//! so. Elsewhere (the server, tests, other Rust clients) they keep serde's derive, which takes
//! the keys in any order, for JSON that went through a sorted map such as
//! `serde_json::Value`. Both ways are tested natively: [`TypeFirst`] is what the wasm uses.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{EnumAccessDeserializer, MapAccessDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, VariantAccess, Visitor,
};

/// An internally tagged enum with an externally tagged twin (`#[serde(remote = ...)]`) that
/// reads a variant once its tag is known.
pub(crate) trait Tagged: Sized {
    /// The enum's name, for errors.
    const NAME: &'static str;
    /// Reads a variant through the twin's derive: `d` hands it the tag, then the rest of the
    /// object's entries as the variant's fields (or as its newtype's map).
    fn variant<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Deserializes `T` from an object whose first key is `type`.
pub(crate) fn type_first<'de, T: Tagged, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(ObjectVisitor(PhantomData))
}

/// `T` read with [`type_first`], for callers (and tests) on any target.
#[derive(Debug, PartialEq)]
pub struct TypeFirst<T>(pub T);

impl<'de, T: Tagged> de::Deserialize<'de> for TypeFirst<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        type_first(d).map(TypeFirst)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Tagged> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object: {} with `type` first", T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key_seed(TypeKey(T::NAME))? {
            Some(()) => T::variant(EnumAccessDeserializer::new(Fields(map))),
            None => Err(de::Error::missing_field("type")),
        }
    }
}

/// The first key, which must be `type`.
struct TypeKey(&'static str);

impl<'de> DeserializeSeed<'de> for TypeKey {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for TypeKey {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the key `type`")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        if key == "type" {
            Ok(())
        } else {
            Err(E::custom(format_args!(
                "`type` must be the first key of a {} object, found `{key}` first",
                self.0
            )))
        }
    }
}

/// The object's entries after `type`: the tag's value names the variant, the rest are its
/// fields.
struct Fields<A>(A);

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for Fields<A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        mut self,
        seed: V,
    ) -> Result<(V::Value, Self), A::Error> {
        let variant = self.0.next_value_seed(seed)?;
        Ok((variant, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Fields<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        while self.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        seed.deserialize(MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "an internally tagged enum has no tuple variants",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, ServerMsg};

    fn read<T: Tagged>(json: &str) -> Result<T, String> {
        serde_json::from_str::<TypeFirst<T>>(json)
            .map(|TypeFirst(t)| t)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn type_first_is_read_without_a_buffer_and_later_keys_are_refused() {
        let msg = read::<ServerMsg>(r#"{"type":"pong","id":2,"ts_us":3}"#).unwrap();
        assert_eq!(msg, ServerMsg::Pong { id: 2, ts_us: 3 });
        // Unknown fields are skipped, as serde's derive does.
        let msg = read::<ServerMsg>(r#"{"type":"lagged","new":[1,{"a":2}],"missed":5}"#);
        assert_eq!(msg.unwrap(), ServerMsg::Lagged { missed: 5 });
        let err = read::<ServerMsg>(r#"{"missed":5,"type":"lagged"}"#).unwrap_err();
        assert!(err.contains("`type` must be the first key"), "{err}");
        assert!(err.contains("found `missed`"), "{err}");
        // serde's derive (the server's, and native clients') still takes any order.
        #[cfg(not(target_arch = "wasm32"))]
        assert_eq!(
            serde_json::from_str::<ServerMsg>(r#"{"missed":5,"type":"lagged"}"#).unwrap(),
            ServerMsg::Lagged { missed: 5 }
        );
    }

    #[test]
    fn bad_objects_get_serde_errors() {
        let err = read::<EventKind>(r#"{}"#).unwrap_err();
        assert!(err.contains("missing field `type`"), "{err}");
        let err = read::<EventKind>(r#"{"type":"smtp_mail","peer":"p"}"#).unwrap_err();
        assert!(err.contains("unknown variant `smtp_mail`"), "{err}");
        let err = read::<EventKind>(r#"{"type":"chat","from":"a"}"#).unwrap_err();
        assert!(err.contains("missing field `text`"), "{err}");
        let err = read::<EventKind>(r#"[1]"#).unwrap_err();
        assert!(err.contains("an object: EventKind"), "{err}");
        // A newtype variant's fields follow the tag too.
        let kind = read::<EventKind>(r#"{"type":"http","id":4,"status":200}"#);
        assert!(matches!(kind, Err(e) if e.contains("missing field")));
    }
}
