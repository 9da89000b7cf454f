//! Typed Arrow builders, one per queried column, shared by the REST (JSON) and Bulk (CSV)
//! decoders; struct columns (compounds, relationships) nest builders of any kind.

use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder, StructArray, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Fields};

use super::DecodeError;
use crate::schema::{arrow_field, arrow_type, Column, ColumnKind, ADDRESS_KEYS, LOCATION_KEYS};

pub(super) enum Builder {
    Utf8(StringBuilder),
    Json(StringBuilder),
    Bool(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Timestamp(TimestampMillisecondBuilder),
    /// `HH:MM:SS.sss` text.
    Time(StringBuilder),
    List(ListBuilder<StringBuilder>),
    Struct(Box<StructColumn>),
}

/// A struct column: an address or location (keys are the compound's), or a relationship
/// (keys are the parent fields' API names).
pub(super) struct StructColumn {
    /// The JSON key of each child, in struct order.
    pub(super) keys: Box<[Box<str>]>,
    pub(super) children: Vec<Builder>,
    pub(super) validity: NullBufferBuilder,
    pub(super) fields: Fields,
    pub(super) relationship: bool,
}

impl Builder {
    /// The builder for a column of the schema (a relationship's struct holds a builder per
    /// parent field, nested as deep as its paths go).
    pub(super) fn for_column(c: &Column) -> Self {
        match &c.parent {
            Some(p) => Builder::Struct(Box::new(StructColumn {
                keys: p.fields.iter().map(|f| f.name.as_str().into()).collect(),
                children: p.fields.iter().map(Builder::for_column).collect(),
                validity: NullBufferBuilder::new(0),
                fields: p.fields.iter().map(arrow_field).collect(),
                relationship: true,
            })),
            None => Builder::new(c.kind),
        }
    }

    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Utf8 => Builder::Utf8(StringBuilder::new()),
            ColumnKind::JsonText => Builder::Json(StringBuilder::new()),
            ColumnKind::Bool => Builder::Bool(BooleanBuilder::new()),
            ColumnKind::Int32 => Builder::Int32(Int32Builder::new()),
            ColumnKind::Int64 => Builder::Int64(Int64Builder::new()),
            ColumnKind::Float64 => Builder::Float64(Float64Builder::new()),
            ColumnKind::Decimal { precision, scale } => Builder::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(precision, scale)
                    .expect("decimal_shape clamps precision and scale"),
                precision,
                scale,
            ),
            ColumnKind::Date => Builder::Date(Date32Builder::new()),
            ColumnKind::Timestamp => {
                Builder::Timestamp(TimestampMillisecondBuilder::new().with_timezone("UTC"))
            }
            ColumnKind::Time => Builder::Time(StringBuilder::new()),
            ColumnKind::MultiPicklist => Builder::List(ListBuilder::new(StringBuilder::new())),
            ColumnKind::Address | ColumnKind::Location | ColumnKind::Relationship => {
                let keys: &'static [(&'static str, ColumnKind)] = match kind {
                    ColumnKind::Address => &ADDRESS_KEYS,
                    ColumnKind::Location => &LOCATION_KEYS,
                    _ => &[], // a relationship without fields: see `for_column`
                };
                let fields = match arrow_type(kind) {
                    DataType::Struct(f) => f,
                    _ => unreachable!("compound kinds map to structs"),
                };
                Builder::Struct(Box::new(StructColumn {
                    keys: keys.iter().map(|(k, _)| (*k).into()).collect(),
                    children: keys.iter().map(|(_, k)| Builder::new(*k)).collect(),
                    validity: NullBufferBuilder::new(0),
                    fields,
                    relationship: false,
                }))
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            Builder::Utf8(b) | Builder::Json(b) => b.len(),
            Builder::Bool(b) => b.len(),
            Builder::Int32(b) => b.len(),
            Builder::Int64(b) => b.len(),
            Builder::Float64(b) => b.len(),
            Builder::Decimal(b, ..) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Timestamp(b) => b.len(),
            Builder::Time(b) => b.len(),
            Builder::List(b) => b.len(),
            Builder::Struct(s) => s.validity.len(),
        }
    }

    /// The most values any part of the column holds (a struct's children may be ahead of it
    /// while a record is read).
    pub(super) fn deep_len(&self) -> usize {
        match self {
            Builder::Struct(s) => s
                .children
                .iter()
                .map(Builder::deep_len)
                .fold(s.validity.len(), usize::max),
            b => b.len(),
        }
    }

    /// Appends nulls until the column (and every child of a struct) holds `n` values.
    pub(super) fn pad_to(&mut self, n: usize) {
        if let Builder::Struct(s) = self {
            for c in &mut s.children {
                c.pad_to(n);
            }
            while s.validity.len() < n {
                s.validity.append_null();
            }
        } else {
            while self.len() < n {
                self.append_null();
            }
        }
    }

    pub(super) fn append_null(&mut self) {
        match self {
            Builder::Utf8(b) | Builder::Json(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Decimal(b, ..) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::List(b) => b.append_null(),
            Builder::Struct(s) => {
                for c in &mut s.children {
                    c.append_null();
                }
                s.validity.append_null();
            }
        }
    }

    pub(super) fn finish(&mut self) -> Result<ArrayRef, arrow::error::ArrowError> {
        use arrow::array::ArrayBuilder;
        Ok(match self {
            Builder::Utf8(b) | Builder::Json(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Decimal(b, ..) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::List(b) => ArrayBuilder::finish(b),
            Builder::Struct(s) => {
                let children = s
                    .children
                    .iter_mut()
                    .map(|c| c.finish())
                    .collect::<Result<Vec<_>, _>>()?;
                let nulls = s.validity.finish();
                Arc::new(StructArray::try_new(s.fields.clone(), children, nulls)?)
            }
        })
    }
}

/// Finishes every builder (they then hold no rows); the first `written` columns' arrays.
pub(super) fn finish_builders(
    builders: &mut [Builder],
    written: usize,
    object: &str,
) -> Result<Vec<ArrayRef>, DecodeError> {
    let mut arrays = Vec::with_capacity(written);
    for (i, b) in builders.iter_mut().enumerate() {
        let a = b.finish().map_err(|e| DecodeError::Arrow {
            object: object.to_string(),
            message: e.to_string(),
        })?;
        if i < written {
            arrays.push(a);
        }
    }
    Ok(arrays)
}
