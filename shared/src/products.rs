//! The live product list (the course's `realTimeProducts` exercise): [`Product`], what a new
//! one must be ([`NewProduct`]), and the typed reasons one is refused ([`FieldError`]).
//!
//! The rules live here, once: the server checks every product it is given (over HTTP or the
//! WebSocket) with [`NewProduct::from_json`] or [`NewProduct::check`], and the page checks its
//! form with [`NewProduct::from_form`] before sending, so both refuse the same things with the
//! same [`Problem`]s (which the page shows in the reader's language).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// The longest code, in characters (letters, digits, `-` and `_`).
pub const MAX_CODE_CHARS: usize = 32;
/// The highest price.
pub const MAX_PRICE: f64 = 1_000_000_000.0;
/// The highest stock.
pub const MAX_STOCK: u32 = 1_000_000_000;

/// A product's id, chosen by the server: rises with every product created, never reused.
pub type ProductId = u64;

/// A price: a finite number, 0 or more (checked by [`NewProduct::check`]).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(pub f64);

// Prices are finite (JSON cannot carry NaN, and `check` refuses infinities), so equality is
// an equivalence.
impl Eq for Price {}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

/// A product as the server keeps it and sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its id.
    pub id: ProductId,
    /// Its name.
    pub title: String,
    /// What it is.
    pub description: String,
    /// A code no other product has.
    pub code: String,
    /// Its price, 0 or more.
    pub price: Price,
    /// How many are in stock.
    pub stock: u32,
}

/// A product to create: everything but the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProduct {
    /// Its name: 1–100 characters, not blank.
    pub title: String,
    /// What it is: 1–1,000 characters, not blank.
    pub description: String,
    /// 1–32 letters, digits, `-` or `_`, unique among products.
    pub code: String,
    /// 0 or more (at most 10⁹).
    pub price: Price,
    /// 0 or more, a whole number (at most 10⁹).
    pub stock: u32,
}

/// A field of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductField {
    /// `title`.
    Title,
    /// `description`.
    Description,
    /// `code`.
    Code,
    /// `price`.
    Price,
    /// `stock`.
    Stock,
}

impl ProductField {
    /// Every field, in form order.
    pub const ALL: [ProductField; 5] = [
        ProductField::Title,
        ProductField::Description,
        ProductField::Code,
        ProductField::Price,
        ProductField::Stock,
    ];

    /// The field's name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductField::Title => "title",
            ProductField::Description => "description",
            ProductField::Code => "code",
            ProductField::Price => "price",
            ProductField::Stock => "stock",
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// Absent (or `null`).
    Missing,
    /// Text expected, something else given.
    NotText,
    /// Empty or only white space.
    Blank,
    /// Longer than allowed.
    TooLong,
    /// A code with characters other than letters, digits, `-` and `_`.
    BadChars,
    /// A number expected, something else given.
    NotANumber,
    /// Below 0.
    Negative,
    /// A stock that is not a whole number.
    NotWhole,
    /// Above the highest allowed.
    TooBig,
    /// Another product already has this code.
    Taken,
    /// A code this build does not know (sent by a newer server).
    #[serde(other)]
    Other,
}

impl Problem {
    /// The problem as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::NotText => "not_text",
            Problem::Blank => "blank",
            Problem::TooLong => "too_long",
            Problem::BadChars => "bad_chars",
            Problem::NotANumber => "not_a_number",
            Problem::Negative => "negative",
            Problem::NotWhole => "not_whole",
            Problem::TooBig => "too_big",
            Problem::Taken => "taken",
            Problem::Other => "other",
        }
    }
}

/// One reason a product was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field.
    pub field: ProductField,
    /// What is wrong with it.
    pub problem: Problem,
    /// The same, in English, for people reading the JSON (the page shows its own words).
    pub message: String,
}

impl FieldError {
    /// The error for `field`, with its English message.
    pub fn new(field: ProductField, problem: Problem) -> Self {
        let name = field.as_str();
        let message = match problem {
            Problem::Missing => format!("{name} is required"),
            Problem::NotText => format!("{name} must be text"),
            Problem::Blank => format!("{name} must not be blank"),
            Problem::TooLong => format!("{name} is too long (at most {})", max_chars(field)),
            Problem::BadChars => format!("{name} may hold only letters, digits, - and _"),
            Problem::NotANumber => format!("{name} must be a number"),
            Problem::Negative => format!("{name} must be 0 or more"),
            Problem::NotWhole => format!("{name} must be a whole number"),
            Problem::TooBig => format!("{name} is too big (at most 1000000000)"),
            Problem::Taken => format!("another product already has this {name}"),
            Problem::Other => format!("{name} is not valid"),
        };
        FieldError {
            field,
            problem,
            message,
        }
    }
}

fn max_chars(field: ProductField) -> usize {
    match field {
        ProductField::Title => MAX_TITLE_CHARS,
        ProductField::Description => MAX_DESCRIPTION_CHARS,
        ProductField::Code => MAX_CODE_CHARS,
        ProductField::Price | ProductField::Stock => 0,
    }
}

/// Checks a text field: present, not blank, not too long (and, for the code, its
/// characters). Returns it trimmed.
fn text(field: ProductField, value: &str) -> Result<String, Problem> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Problem::Blank);
    }
    if trimmed.chars().nth(max_chars(field)).is_some() {
        return Err(Problem::TooLong);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Problem::BadChars);
    }
    if field == ProductField::Code
        && !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Problem::BadChars);
    }
    Ok(trimmed.to_owned())
}

fn price(value: f64) -> Result<Price, Problem> {
    if !value.is_finite() {
        Err(Problem::NotANumber)
    } else if value < 0.0 {
        Err(Problem::Negative)
    } else if value > MAX_PRICE {
        Err(Problem::TooBig)
    } else {
        Ok(Price(value))
    }
}

fn stock(value: f64) -> Result<u32, Problem> {
    if !value.is_finite() {
        Err(Problem::NotANumber)
    } else if value < 0.0 {
        Err(Problem::Negative)
    } else if value.fract() != 0.0 {
        Err(Problem::NotWhole)
    } else if value > f64::from(MAX_STOCK) {
        Err(Problem::TooBig)
    } else {
        // A whole number in 0..=10⁹: exact.
        Ok(value as u32)
    }
}

/// Collects the fields' results into a product, or every field's problem.
struct Checked {
    errors: Vec<FieldError>,
}

impl Checked {
    fn take<T>(&mut self, field: ProductField, result: Result<T, Problem>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(problem) => {
                self.errors.push(FieldError::new(field, problem));
                None
            }
        }
    }
}

impl NewProduct {
    /// Checks a JSON object as a client sent it (`POST /api/products`): every field's
    /// problem at once, or the product (texts trimmed).
    pub fn from_json(value: &Value) -> Result<NewProduct, Vec<FieldError>> {
        let field = |f: ProductField| value.get(f.as_str()).filter(|v| !v.is_null());
        let as_text = |f: ProductField| match field(f) {
            None => Err(Problem::Missing),
            Some(Value::String(s)) => text(f, s),
            Some(_) => Err(Problem::NotText),
        };
        let as_number = |f: ProductField| match field(f) {
            None => Err(Problem::Missing),
            Some(v) => v.as_f64().ok_or(Problem::NotANumber),
        };
        let mut checked = Checked { errors: Vec::new() };
        let title = checked.take(ProductField::Title, as_text(ProductField::Title));
        let description = checked.take(
            ProductField::Description,
            as_text(ProductField::Description),
        );
        let code = checked.take(ProductField::Code, as_text(ProductField::Code));
        let price = checked.take(
            ProductField::Price,
            as_number(ProductField::Price).and_then(price),
        );
        let stock = checked.take(
            ProductField::Stock,
            as_number(ProductField::Stock).and_then(stock),
        );
        match (title, description, code, price, stock) {
            (Some(title), Some(description), Some(code), Some(price), Some(stock)) => {
                Ok(NewProduct {
                    title,
                    description,
                    code,
                    price,
                    stock,
                })
            }
            _ => Err(checked.errors),
        }
    }

    /// Checks a form's five inputs as typed (numbers as text: `12.5`, or `12,5` as Spanish
    /// keyboards write it).
    pub fn from_form(
        title: &str,
        description: &str,
        code: &str,
        price: &str,
        stock: &str,
    ) -> Result<NewProduct, Vec<FieldError>> {
        let number = |s: &str| {
            let s = s.trim().replace(',', ".");
            if s.is_empty() {
                return Value::Null;
            }
            s.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(s), Value::Number)
        };
        let json = serde_json::json!({
            "title": title,
            "description": description,
            "code": code,
            "price": number(price),
            "stock": number(stock),
        });
        NewProduct::from_json(&json)
    }

    /// Checks a product that arrived typed (over the WebSocket): the same rules.
    pub fn check(&self) -> Result<NewProduct, Vec<FieldError>> {
        match serde_json::to_value(self) {
            Ok(value) => NewProduct::from_json(&value),
            // A non-finite price does not serialize.
            Err(_) => Err(vec![FieldError::new(
                ProductField::Price,
                Problem::NotANumber,
            )]),
        }
    }

    /// The product with its id.
    pub fn with_id(self, id: ProductId) -> Product {
        Product {
            id,
            title: self.title,
            description: self.description,
            code: self.code,
            price: self.price,
            stock: self.stock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(value: Value) -> Vec<(ProductField, Problem)> {
        match NewProduct::from_json(&value) {
            Ok(p) => panic!("accepted {p:?}"),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.problem)).collect(),
        }
    }

    #[test]
    fn a_good_product_is_taken_trimmed() {
        let p = NewProduct::from_json(&json!({
            "title": " Mate ", "description": "Calabaza", "code": "MATE-01",
            "price": 12.5, "stock": 3
        }))
        .expect("valid");
        assert_eq!(p.title, "Mate");
        assert_eq!(p.price, Price(12.5));
        assert_eq!(p.stock, 3);
        assert_eq!(p.check(), Ok(p.clone()));
    }

    #[test]
    fn every_field_problem_is_reported_at_once() {
        assert_eq!(
            problems(json!({"title": "", "code": "a b", "price": -1, "stock": 1.5})),
            vec![
                (ProductField::Title, Problem::Blank),
                (ProductField::Description, Problem::Missing),
                (ProductField::Code, Problem::BadChars),
                (ProductField::Price, Problem::Negative),
                (ProductField::Stock, Problem::NotWhole),
            ]
        );
        assert_eq!(
            problems(json!({"title": 1, "description": "d", "code": "c",
                "price": "10", "stock": -2})),
            vec![
                (ProductField::Title, Problem::NotText),
                (ProductField::Price, Problem::NotANumber),
                (ProductField::Stock, Problem::Negative),
            ]
        );
        assert_eq!(
            problems(
                json!({"title": "t".repeat(101), "description": "d", "code": "c",
                "price": 2e9, "stock": 2e9})
            ),
            vec![
                (ProductField::Title, Problem::TooLong),
                (ProductField::Price, Problem::TooBig),
                (ProductField::Stock, Problem::TooBig),
            ]
        );
        assert_eq!(problems(json!([])).len(), 5);
    }

    #[test]
    fn zero_is_a_price_and_a_stock() {
        let p = NewProduct::from_form("Gift", "Free", "gift", "0", "0").expect("valid");
        assert_eq!((p.price, p.stock), (Price(0.0), 0));
        let p = NewProduct::from_form("Yerba", "1 kg", "y1", "4,75", "10").expect("comma");
        assert_eq!(p.price, Price(4.75));
        let errors = NewProduct::from_form("t", "d", "c", "abc", "").expect_err("bad");
        let got: Vec<_> = errors.iter().map(|e| (e.field, e.problem)).collect();
        assert_eq!(
            got,
            vec![
                (ProductField::Price, Problem::NotANumber),
                (ProductField::Stock, Problem::Missing)
            ]
        );
    }

    #[test]
    fn field_errors_have_a_fixed_json_shape() {
        let e = FieldError::new(ProductField::Code, Problem::Taken);
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"field":"code","problem":"taken","message":"another product already has this code"}"#
        );
        let product = Product {
            id: 7,
            title: "Mate".into(),
            description: "Calabaza".into(),
            code: "MATE-01".into(),
            price: Price(12.5),
            stock: 3,
        };
        assert_eq!(
            serde_json::to_string(&product).expect("json"),
            r#"{"id":7,"title":"Mate","description":"Calabaza","code":"MATE-01","price":12.5,"stock":3}"#
        );
    }
}
