//! Strict readings of JSON bodies: a transaction is an object and nothing
//! else, and an object that repeats a key is refused rather than read with
//! one of its values.
//!
//! serde is lenient in two ways a write route must not be: a derived
//! struct also deserializes from a sequence (`[null, "<uuid>", "7.77"]`
//! would be a transaction), and `serde_json::Value` keeps the last of a
//! repeated key (`{"amount": "1.00", "amount": "99999.00"}`). Derived
//! structs already refuse repeated fields, so the plain (fast) reading only
//! needs [`Object`]; the general reading goes through [`strict_value`], and
//! a batch's outer shape through [`BatchShape`], so that a repeated key
//! inside one item rejects that item only.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::api::error::echo;

/// `T` read only from a JSON object, never from an array.
pub(crate) struct Object<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// Reads any JSON text, refusing an object (at any depth) that repeats a
/// key; the error names the key.
///
/// # Errors
/// A syntax error, or `duplicate key ...`.
pub(crate) fn strict_value(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|strict| strict.0)
}

/// A [`Value`] whose objects repeat no key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(duplicate(&key));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn duplicate<E: de::Error>(key: &str) -> E {
    E::custom(format_args!(
        "duplicate key `{}`: send each key once",
        echo(key)
    ))
}

/// The outer shape of a batch body, its items left unread: a bare array,
/// or an object's members (no key repeated).
pub(crate) enum BatchShape<'a> {
    /// `[item, ...]`.
    Items(Vec<&'a RawValue>),
    /// `{"key": value, ...}`.
    Object(Vec<(String, &'a RawValue)>),
}

impl<'de: 'a, 'a> Deserialize<'de> for BatchShape<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ShapeVisitor<'a> {
            type Value = BatchShape<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of transactions or {\"transactions\": [...]}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<&'a RawValue>()? {
                    items.push(item);
                }
                Ok(BatchShape::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(duplicate(&key));
                    }
                    members.push((key, map.next_value::<&'a RawValue>()?));
                }
                Ok(BatchShape::Object(members))
            }
        }
        deserializer.deserialize_any(ShapeVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Pair {
        a: Option<u8>,
        b: Option<u8>,
    }

    #[test]
    fn an_object_reading_refuses_the_sequence_form_serde_would_take() {
        assert!(
            serde_json::from_str::<Pair>("[1, 2]").is_ok(),
            "serde's leniency"
        );
        assert!(serde_json::from_str::<Object<Pair>>("[1, 2]").is_err());
        let Object(pair) = serde_json::from_str::<Object<Pair>>(r#"{"a":1}"#).expect("an object");
        assert_eq!(
            pair,
            Pair {
                a: Some(1),
                b: None
            }
        );
        assert!(serde_json::from_str::<Object<Pair>>(r#"{"a":1,"a":2}"#).is_err());
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named() {
        for text in [
            r#"{"amount":"1","amount":"2"}"#,
            r#"[{"x":{"amount":1,"amount":1}}]"#,
        ] {
            let error = strict_value(text).expect_err(text).to_string();
            assert!(error.contains("`amount`"), "{text}: {error}");
        }
        let value = strict_value(r#"{"a":[1,-2,2.5,"x",null,true,{"b":{}}]}"#).expect("valid");
        assert_eq!(
            value,
            serde_json::json!({"a":[1,-2,2.5,"x",null,true,{"b":{}}]})
        );
    }

    #[test]
    fn a_batch_shape_reads_the_outer_level_only() {
        let items = r#"[{"a":1,"a":2},[3]]"#;
        match serde_json::from_str::<BatchShape<'_>>(items).expect("an array") {
            BatchShape::Items(items) => {
                assert_eq!(items.len(), 2);
                assert_eq!(items[0].get(), r#"{"a":1,"a":2}"#);
            }
            BatchShape::Object(_) => panic!("read as an object"),
        }
        let repeated = r#"{"transactions":[],"transactions":[]}"#;
        let error = serde_json::from_str::<BatchShape<'_>>(repeated)
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("`transactions`")),
            "{error:?}"
        );
        assert!(serde_json::from_str::<BatchShape<'_>>("7").is_err());
    }
}
