//! Column values and the typing rule of Segment's warehouse schema.
//!
//! A column's type is fixed by the first non-null value that arrives for it, and
//! is never changed afterwards: later values are cast when the cast loses nothing
//! (an integer into a `double` column, anything into a `varchar` column as its
//! JSON text) and are otherwise stored as NULL and counted, so that one bad
//! payload can never break a table that dashboards depend on.

use crate::tape::{JsonRef, Kind};
use crate::time::{format_iso, parse_timestamp, Micros};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The five warehouse column types the product creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Microseconds since the epoch, UTC.
    Timestamp,
    /// A 64-bit integer.
    Bigint,
    /// A 64-bit float.
    Double,
    /// `true`/`false`.
    Boolean,
    /// Text (an array or object value is stored as its JSON text).
    Varchar,
}

impl ColumnType {
    /// The type's name as the warehouse DDL spells it (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Timestamp => "timestamp",
            ColumnType::Bigint => "bigint",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Varchar => "varchar",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cell of a row on its way to a warehouse.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A timestamp, in microseconds since the epoch.
    Ts(Micros),
}

impl Value {
    /// The type a column would get if this value were its first.
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => ColumnType::Boolean,
            Value::Int(_) => ColumnType::Bigint,
            Value::Float(_) => ColumnType::Double,
            Value::Str(_) => ColumnType::Varchar,
            Value::Ts(_) => ColumnType::Timestamp,
        })
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Types a JSON leaf. Strings that parse as ISO-8601 date-times become
    /// timestamps; arrays and objects become their JSON text.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => n.as_f64().map(Value::Float).unwrap_or(Value::Null),
            },
            serde_json::Value::String(s) => match parse_timestamp(s) {
                Some(t) => Value::Ts(t),
                None => Value::Str(s.clone()),
            },
            other => Value::Str(other.to_string()),
        }
    }

    /// Casts into a column of type `to`. `None` means the cast would lose
    /// information: the caller stores NULL and counts it. (The rules are
    /// [`Cell::cast`]'s.)
    pub fn cast(self, to: ColumnType) -> Option<Value> {
        if self.column_type().is_none_or(|t| t == to) {
            return Some(self);
        }
        let mut text = String::new();
        Cell::from(&self).cast(to, &mut text).map(Cell::to_value)
    }
}

/// One cell, borrowed: what a row buffer copies into its columns. Typing
/// a JSON leaf as a `Cell` ([`Cell::from_ref`]) copies nothing, where a
/// [`Value`] owns a copy of every string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string, borrowed.
    Str(&'a str),
    /// Microseconds since the epoch.
    Ts(Micros),
}

fn text(scratch: &mut String, s: String) -> Option<Cell<'_>> {
    *scratch = s;
    Some(Cell::Str(scratch))
}

impl<'a> From<&'a Value> for Cell<'a> {
    fn from(v: &'a Value) -> Cell<'a> {
        match v {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Bool(*b),
            Value::Int(i) => Cell::Int(*i),
            Value::Float(f) => Cell::Float(*f),
            Value::Str(s) => Cell::Str(s),
            Value::Ts(t) => Cell::Ts(*t),
        }
    }
}

impl<'a> Cell<'a> {
    /// The owned [`Value`] of this cell.
    pub fn to_value(self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(b),
            Cell::Int(i) => Value::Int(i),
            Cell::Float(f) => Value::Float(f),
            Cell::Str(s) => Value::Str(s.to_owned()),
            Cell::Ts(t) => Value::Ts(t),
        }
    }

    /// [`Value::from_json`] of a leaf of a parsed document, without the
    /// copy: arrays and objects, the only leaves that need new text, are
    /// written into `scratch` as `serde_json` writes them.
    pub fn from_ref(v: JsonRef<'a>, scratch: &'a mut String) -> Cell<'a> {
        match v.kind() {
            Kind::Null => Cell::Null,
            Kind::Bool(b) => Cell::Bool(b),
            Kind::Int(i) => Cell::Int(i),
            Kind::Number => match v.number() {
                Some(n) => match n.as_i64() {
                    Some(i) => Cell::Int(i),
                    None => n.as_f64().map(Cell::Float).unwrap_or(Cell::Null),
                },
                None => Cell::Null,
            },
            Kind::Str(s) => match parse_timestamp(s) {
                Some(t) => Cell::Ts(t),
                None => Cell::Str(s),
            },
            Kind::Array | Kind::Object => {
                scratch.clear();
                use std::fmt::Write;
                let _ = write!(scratch, "{}", v.to_json());
                Cell::Str(scratch)
            }
        }
    }

    /// The type a column would get if this cell were its first.
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Cell::Null => return None,
            Cell::Bool(_) => ColumnType::Boolean,
            Cell::Int(_) => ColumnType::Bigint,
            Cell::Float(_) => ColumnType::Double,
            Cell::Str(_) => ColumnType::Varchar,
            Cell::Ts(_) => ColumnType::Timestamp,
        })
    }

    /// Casts into a column of type `to`; text made by the cast (a number or
    /// a timestamp into a varchar column) goes into `scratch`. `None` means
    /// the cast would lose information.
    pub fn cast<'b>(self, to: ColumnType, scratch: &'b mut String) -> Option<Cell<'b>>
    where
        'a: 'b,
    {
        use ColumnType as T;
        match (self, to) {
            (Cell::Null, _) => Some(Cell::Null),
            (v @ Cell::Bool(_), T::Boolean)
            | (v @ Cell::Int(_), T::Bigint)
            | (v @ Cell::Float(_), T::Double)
            | (v @ Cell::Str(_), T::Varchar)
            | (v @ Cell::Ts(_), T::Timestamp) => Some(v),
            (Cell::Int(i), T::Double) => {
                let f = i as f64;
                (f as i64 == i).then_some(Cell::Float(f))
            }
            (Cell::Float(f), T::Bigint) => {
                (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(Cell::Int(f as i64))
            }
            (Cell::Bool(b), T::Varchar) => text(scratch, b.to_string()),
            (Cell::Int(i), T::Varchar) => text(scratch, i.to_string()),
            (Cell::Float(f), T::Varchar) => text(
                scratch,
                serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string()),
            ),
            (Cell::Ts(t), T::Varchar) => text(scratch, format_iso(t)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typing() {
        assert_eq!(Value::from_json(&json!(3)), Value::Int(3));
        assert_eq!(Value::from_json(&json!(3.5)), Value::Float(3.5));
        assert_eq!(Value::from_json(&json!(true)), Value::Bool(true));
        assert_eq!(
            Value::from_json(&json!([1, "a"])),
            Value::Str("[1,\"a\"]".into())
        );
        assert!(matches!(
            Value::from_json(&json!("2024-01-01T00:00:00Z")),
            Value::Ts(_)
        ));
        assert_eq!(Value::from_json(&json!("x")), Value::Str("x".into()));
    }

    #[test]
    fn lossless_casts_only() {
        assert_eq!(
            Value::Int(2).cast(ColumnType::Double),
            Some(Value::Float(2.0))
        );
        assert_eq!(
            Value::Float(2.0).cast(ColumnType::Bigint),
            Some(Value::Int(2))
        );
        assert_eq!(Value::Float(2.5).cast(ColumnType::Bigint), None);
        assert_eq!(Value::Str("x".into()).cast(ColumnType::Bigint), None);
        assert_eq!(
            Value::Bool(true).cast(ColumnType::Varchar),
            Some(Value::Str("true".into()))
        );
        assert_eq!(
            Value::Int(7).cast(ColumnType::Varchar),
            Some(Value::Str("7".into()))
        );
        assert_eq!(Value::Int(7).cast(ColumnType::Timestamp), None);
        // Text the cast makes: serde_json's number text, ISO-8601 times.
        for (v, text) in [
            (Value::Float(2.5), "2.5"),
            (Value::Float(2.0), "2.0"),
            (Value::Ts(0), "1970-01-01T00:00:00.000Z"),
            (Value::Bool(false), "false"),
        ] {
            assert_eq!(v.cast(ColumnType::Varchar), Some(Value::Str(text.into())));
        }
        assert_eq!(Value::Ts(0).cast(ColumnType::Timestamp), Some(Value::Ts(0)));
        assert_eq!(Value::Str("x".into()).cast(ColumnType::Timestamp), None);
        assert_eq!(Value::Null.cast(ColumnType::Boolean), Some(Value::Null));
    }

    #[test]
    fn cells_type_and_cast_as_values_do() {
        let leaves = [
            json!(null),
            json!(true),
            json!(3),
            json!(-2.0),
            json!(2.5),
            json!(1e300),
            json!("x"),
            json!("2024-01-01T00:00:00Z"),
            json!([1, {"a": "b"}]),
            json!({"k": 1}),
        ];
        let types = [
            ColumnType::Timestamp,
            ColumnType::Bigint,
            ColumnType::Double,
            ColumnType::Boolean,
            ColumnType::Varchar,
        ];
        for leaf in &leaves {
            let doc = crate::tape::Doc::parse(leaf.to_string()).unwrap();
            let mut scratch = String::new();
            let cell = Cell::from_ref(doc.root(), &mut scratch);
            let value = Value::from_json(leaf);
            assert_eq!(cell.to_value(), value, "{leaf}");
            assert_eq!(cell.column_type(), value.column_type(), "{leaf}");
            for ty in types {
                let mut out = String::new();
                let got = cell.cast(ty, &mut out).map(Cell::to_value);
                assert_eq!(got, value.clone().cast(ty), "{leaf} as {ty}");
            }
        }
    }
}
