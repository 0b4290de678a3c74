//! `CAST(float AS DECIMAL(p, s))` as Trino (Athena) computes it, for the local engine: an
//! analyzer rule that rewrites every cast (and `TRY_CAST`) from DOUBLE or REAL to a decimal into
//! a scalar function reading the float's shortest decimal text (Java's `Double.toString` /
//! `Float.toString`) and rounding it half-up at the scale, where arrow's cast rounds the binary
//! double times 10^s (`1.005` → `1.00` there, `1.01` on Trino). A value outside the precision,
//! NaN or an infinity is an error naming it as Trino does (`Cannot cast DOUBLE '1.0E20' to
//! DECIMAL(10, 2)`); under `TRY_CAST`, NULL. Half floats (no Trino counterpart) keep arrow's cast.

mod digits;

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowNativeTypeOp, DataType, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    DecimalType, Field, FieldRef, Float32Type, Float64Type,
};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

pub use digits::{Shortest, java_f32, java_f64};

/// The analyzer rule (runs after type coercion, over the whole plan and its subqueries).
#[derive(Debug, Default)]
pub struct TrinoFloatToDecimal;

impl AnalyzerRule for TrinoFloatToDecimal {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_exprs(plan, rewrite_cast)
    }

    fn name(&self) -> &str {
        "stocklake_float_to_decimal"
    }
}

/// The plan and its subqueries with `rewrite` applied to every expression of every node,
/// bottom up, each expression keeping its name; `rewrite` gets the node's input schema (a
/// scan's: its source's).
pub(crate) fn rewrite_exprs(
    plan: LogicalPlan,
    rewrite: fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    Ok(plan
        .transform_up_with_subqueries(|node| rewrite_node(node, rewrite))?
        .data)
}

/// One plan node: `rewrite` applied to its expressions, names kept.
fn rewrite_node(
    plan: LogicalPlan,
    rewrite: fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    let mut schema = merge_schema(&plan.inputs());
    if let LogicalPlan::TableScan(scan) = &plan {
        let source =
            DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())?;
        schema.merge(&source);
    }
    let names = NamePreserver::new(&plan);
    let rewritten = plan.map_expressions(|expr| {
        let name = names.save(&expr);
        Ok(expr
            .transform_up(|e| rewrite(e, &schema))?
            .update_data(|e| name.restore(e)))
    })?;
    if rewritten.transformed {
        rewritten.map_data(|p| p.recompute_schema())
    } else {
        Ok(rewritten)
    }
}

/// `CAST(x AS DECIMAL…)` / `TRY_CAST` of a DOUBLE or REAL `x` as a call of [`FloatToDecimal`].
fn rewrite_cast(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let (inner, target, lenient) = match &expr {
        Expr::Cast(Cast { expr, field }) => (expr, field.data_type(), false),
        Expr::TryCast(TryCast { expr, field }) => (expr, field.data_type(), true),
        _ => return Ok(Transformed::no(expr)),
    };
    let decimal = matches!(
        target,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    );
    let float = matches!(
        inner.get_type(schema),
        Ok(DataType::Float32 | DataType::Float64)
    );
    if !(decimal && float) {
        return Ok(Transformed::no(expr));
    }
    let udf = ScalarUDF::new_from_impl(FloatToDecimal::new(target.clone(), lenient));
    Ok(Transformed::yes(udf.call(vec![inner.as_ref().clone()])))
}

/// The cast of one float column to one decimal type; `lenient` is `TRY_CAST` (NULL where
/// `CAST` fails). Its column name is its argument's, as a cast's is.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FloatToDecimal {
    target: DataType,
    lenient: bool,
    signature: Signature,
}

impl FloatToDecimal {
    pub fn new(target: DataType, lenient: bool) -> Self {
        FloatToDecimal {
            target,
            lenient,
            signature: Signature::uniform(
                1,
                vec![DataType::Float32, DataType::Float64],
                Volatility::Immutable,
            ),
        }
    }

    fn cast(&self, input: &ArrayRef) -> Result<ArrayRef> {
        let floats = match input.data_type() {
            DataType::Float64 => Floats::Double(input.as_primitive::<Float64Type>()),
            DataType::Float32 => Floats::Real(input.as_primitive::<Float32Type>()),
            other => return exec_err!("{}: not a DOUBLE or REAL: {other}", self.name()),
        };
        match self.target {
            DataType::Decimal32(p, s) => self.build::<Decimal32Type>(&floats, p, s),
            DataType::Decimal64(p, s) => self.build::<Decimal64Type>(&floats, p, s),
            DataType::Decimal128(p, s) => self.build::<Decimal128Type>(&floats, p, s),
            DataType::Decimal256(p, s) => self.build::<Decimal256Type>(&floats, p, s),
            ref other => exec_err!("{}: not a decimal type: {other}", self.name()),
        }
    }

    fn build<D>(&self, floats: &Floats, precision: u8, scale: i8) -> Result<ArrayRef>
    where
        D: DecimalType,
        D::Native: FromStr,
    {
        let len = floats.len();
        let mut out: Vec<Option<D::Native>> = Vec::with_capacity(len);
        for i in 0..len {
            if floats.is_null(i) {
                out.push(None);
                continue;
            }
            let value = fast_unscaled(floats.value(i), floats.text_error(), precision, scale)
                .and_then(native_from::<D::Native>)
                .or_else(|| unscaled::<D::Native>(floats.shortest(i), precision, scale));
            if value.is_none() && !self.lenient {
                return exec_err!(
                    "Cannot cast {} '{}' to DECIMAL({precision}, {scale})",
                    floats.trino_type(),
                    floats.java_text(i)
                );
            }
            out.push(value);
        }
        let array = out
            .into_iter()
            .collect::<PrimitiveArray<D>>()
            .with_precision_and_scale(precision, scale)?;
        Ok(Arc::new(array))
    }
}

impl ScalarUDFImpl for FloatToDecimal {
    fn name(&self) -> &str {
        if self.lenient {
            "stocklake_try_float_to_decimal"
        } else {
            "stocklake_float_to_decimal"
        }
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        match args {
            [arg] => Ok(arg.schema_name().to_string()),
            _ => exec_err!("{} takes one argument", self.name()),
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }

    /// Nullable as a cast is: where its argument is, and always under `TRY_CAST`.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let nullable = self.lenient || args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(
            self.name(),
            self.target.clone(),
            nullable,
        )))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.as_slice() {
            [ColumnarValue::Array(a)] => Ok(ColumnarValue::Array(self.cast(a)?)),
            [ColumnarValue::Scalar(s)] => {
                let out = self.cast(&s.to_array_of_size(1)?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
            }
            _ => exec_err!("{} takes one argument", self.name()),
        }
    }
}

/// The unscaled decimal of a float's shortest digits at (precision, scale); None when there is
/// none (NaN, an infinity, or too many digits for the precision).
fn unscaled<N: FromStr + ArrowNativeTypeOp>(
    digits: Option<Shortest>,
    precision: u8,
    scale: i8,
) -> Option<N> {
    let (negative, magnitude) = digits?.unscaled(scale, usize::from(precision))?;
    if magnitude.is_empty() {
        return Some(N::ZERO);
    }
    let n: N = magnitude.parse().ok()?;
    Some(if negative { n.neg_wrapping() } else { n })
}

/// Powers of ten that a double holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The common case without text: `v × 10^scale` rounded, when no rounding boundary (`k + ½`)
/// lies near enough for the shortest decimal text to fall on its other side. That text is
/// within `text_error × |v|` of `v` (half a unit in the last place: 2^-53 for a double, 2^-24
/// for a real) and the product adds 2^-53 more; the margin is twice their sum. None (use
/// [`unscaled`]) near a boundary, beyond 2^52, outside scales 0..=22, or beyond the precision.
fn fast_unscaled(v: f64, text_error: f64, precision: u8, scale: i8) -> Option<(bool, u64)> {
    let pow = POW10.get(usize::try_from(scale).ok()?)?;
    let scaled = v * pow;
    let magnitude = scaled.abs();
    if !magnitude.is_finite() || magnitude >= 4_503_599_627_370_496.0 {
        return None;
    }
    let whole = magnitude.trunc();
    let frac = magnitude - whole;
    let margin = magnitude * 4.0 * text_error + f64::MIN_POSITIVE;
    if (frac - 0.5).abs() <= margin {
        return None;
    }
    let q = whole as u64 + u64::from(frac > 0.5);
    if precision < 19 && q >= 10u64.pow(u32::from(precision)) {
        return None;
    }
    Some((scaled < 0.0 && q != 0, q))
}

/// A fast result as the decimal type's native integer.
fn native_from<N: ArrowNativeTypeOp>((negative, q): (bool, u64)) -> Option<N> {
    let n = N::from_usize(usize::try_from(q).ok()?)?;
    Some(if negative { n.neg_wrapping() } else { n })
}

/// The float column being cast.
enum Floats<'a> {
    Double(&'a PrimitiveArray<Float64Type>),
    Real(&'a PrimitiveArray<Float32Type>),
}

impl Floats<'_> {
    fn len(&self) -> usize {
        match self {
            Floats::Double(a) => a.len(),
            Floats::Real(a) => a.len(),
        }
    }

    fn is_null(&self, i: usize) -> bool {
        match self {
            Floats::Double(a) => a.is_null(i),
            Floats::Real(a) => a.is_null(i),
        }
    }

    /// The value, widened to a double (exactly, for a real).
    fn value(&self, i: usize) -> f64 {
        match self {
            Floats::Double(a) => a.value(i),
            Floats::Real(a) => f64::from(a.value(i)),
        }
    }

    /// How far (relatively) the shortest text may lie from the value: half an ulp.
    fn text_error(&self) -> f64 {
        match self {
            Floats::Double(_) => f64::EPSILON / 2.0,
            Floats::Real(_) => f64::from(f32::EPSILON) / 2.0,
        }
    }

    fn shortest(&self, i: usize) -> Option<Shortest> {
        match self {
            Floats::Double(a) => Shortest::of_f64(a.value(i)),
            Floats::Real(a) => Shortest::of_f32(a.value(i)),
        }
    }

    fn java_text(&self, i: usize) -> String {
        match self {
            Floats::Double(a) => java_f64(a.value(i)),
            Floats::Real(a) => java_f32(a.value(i)),
        }
    }

    fn trino_type(&self) -> &'static str {
        match self {
            Floats::Double(_) => "DOUBLE",
            Floats::Real(_) => "REAL",
        }
    }
}

#[cfg(test)]
mod tests;
