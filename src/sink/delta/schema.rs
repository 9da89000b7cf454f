//! The table schema: the Arrow schema of a chunk as a Delta schema, and the columns a chunk adds to
//! (or retypes in) an existing table.

use super::*;

/// The Delta schema for an object's Arrow schema: its columns (nullable, except `Id`) and the
/// `date` partition column last.
pub fn table_schema(object: &str, arrow: &ArrowSchema) -> Result<Arc<StructType>, DeltaError> {
    let mut fields: Vec<ArrowField> = arrow.fields().iter().map(|f| f.as_ref().clone()).collect();
    if fields
        .iter()
        .any(|f| f.name().eq_ignore_ascii_case(PARTITION_COLUMN))
    {
        return Err(kernel(
            object,
            "a column is named like the partition column `date` (forcelake writes such a field as `Date_`)",
        ));
    }
    fields.push(ArrowField::new(PARTITION_COLUMN, ArrowType::Date32, true));
    let s = StructType::try_from_arrow(&ArrowSchema::new(fields)).map_err(|e| kernel(object, e))?;
    Ok(Arc::new(s))
}

/// A column added since the table was created: where (its parent struct) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct NewColumn {
    pub parent: Vec<String>,
    pub field: StructField,
}

/// The columns `new` has that `table` lacks (at any depth of structs), or the first column
/// whose type differs. Nullability and metadata are not compared.
pub fn schema_diff(
    object: &str,
    table: &StructType,
    new: &StructType,
) -> Result<Vec<NewColumn>, DeltaError> {
    fn walk(
        object: &str,
        path: &mut Vec<String>,
        table: &StructType,
        new: &StructType,
        out: &mut Vec<NewColumn>,
    ) -> Result<(), DeltaError> {
        for f in new.fields() {
            let existing = table
                .fields()
                .find(|t| t.name().eq_ignore_ascii_case(f.name()));
            match existing {
                None => out.push(NewColumn {
                    parent: path.clone(),
                    field: StructField::new(f.name(), f.data_type().clone(), true)
                        .with_metadata(f.metadata().clone()),
                }),
                Some(t) => match (t.data_type(), f.data_type()) {
                    (DataType::Struct(a), DataType::Struct(b)) => {
                        path.push(t.name().clone());
                        walk(object, path, a, b, out)?;
                        path.pop();
                    }
                    (a, b) if same_type(a, b) => {}
                    (a, b) => {
                        let mut column = path.clone();
                        column.push(f.name().clone());
                        return Err(DeltaError::TypeChanged {
                            object: object.to_string(),
                            column: column.join("."),
                            table_type: a.to_string(),
                            new_type: b.to_string(),
                        });
                    }
                },
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(object, &mut Vec::new(), table, new, &mut out)?;
    Ok(out)
}

/// Top-level decimal columns whose table type differs from the new schema's: (name, table
/// precision, table scale, holds) — `holds`: the table type holds every value of the new type
/// (as many integer digits and as many decimal places, or more).
pub fn decimal_differences(table: &StructType, new: &ArrowSchema) -> Vec<(String, u8, i8, bool)> {
    let mut out = Vec::new();
    for f in new.fields() {
        let ArrowType::Decimal128(np, ns) = f.data_type() else {
            continue;
        };
        let Some(t) = table.field(f.name()) else {
            continue;
        };
        let DataType::Primitive(PrimitiveType::Decimal(d)) = t.data_type() else {
            continue;
        };
        let (tp, ts) = (d.precision(), d.scale() as i8);
        if (tp, ts) == (*np, *ns) {
            continue;
        }
        let holds = ts >= *ns && (tp as i16 - ts as i16) >= (*np as i16 - *ns as i16);
        out.push((f.name().clone(), tp, ts, holds));
    }
    out
}

fn same_type(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::Array(x), DataType::Array(y)) => same_type(x.element_type(), y.element_type()),
        (DataType::Struct(x), DataType::Struct(y)) => {
            x.fields().count() == y.fields().count()
                && x.fields()
                    .zip(y.fields())
                    .all(|(p, q)| p.name() == q.name() && same_type(p.data_type(), q.data_type()))
        }
        _ => a == b,
    }
}
