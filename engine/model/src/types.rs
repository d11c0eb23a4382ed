//! The field types, one table entry each: API name and labels, storage, value parser, filter
//! operators, form widget, filter-bar input, OpenAPI shape and display. The rest of the code
//! asks a field's [`TypeSpec`] instead of matching on its type, so adding a type is adding an
//! entry here (and its parser in `value`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::filter::Operator;
use crate::meta::{FieldDef, StageSetDoc};
use crate::value::{self, DEFAULT_ME, DEFAULT_NOW, DEFAULT_TODAY, Problem, Value};

/// The type of a field. Each variant has its entry in [`TYPES`] at the same position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Integer,
    Decimal,
    Money,
    Percent,
    Date,
    Datetime,
    Boolean,
    Select,
    MultiSelect,
    Lookup,
    User,
    Email,
    Phone,
    Url,
    Region,
    AutoNumber,
    Stage,
}

/// How a field's values are kept in a column; types of one class share a column type, which
/// is what makes a change between them safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Text,
    Integer,
    /// An exact number kept as an integer scaled by `10^scale`.
    Fixed(u8),
    Boolean,
    Date,
    Datetime,
    Uuid,
    /// A list of option values (multi select).
    List,
}

/// Reads a client's JSON (never null) into a value of a field; `stages` is the stage set of a
/// stage field.
pub type Parser = fn(&FieldDef, &Json, Option<&StageSetDoc>) -> Result<Value, Problem>;

/// The records a reference field points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// Always records of this entity.
    Entity(&'static str),
    /// Records of the entity the field's `target` names.
    Target,
}

/// The input a form draws for a field; the names are the form template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Widget {
    Text,
    Textarea,
    Integer,
    Decimal,
    Date,
    Datetime,
    Checkbox,
    Select,
    MultiSelect,
    Lookup,
    User,
    Email,
    Tel,
    Url,
    Region,
}

/// The input a list's filter bar offers for a field, and the condition it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterInput {
    /// A text box: `contains`.
    Search,
    /// A province: `starts_with`, so that its cities match too.
    Province,
    /// One of the field's options: `eq`.
    Option,
    /// One of the stages of the field's sets: `eq`.
    Stage,
    /// Yes or no: `eq`.
    YesNo,
    /// Me or another user: `eq`.
    User,
    /// A record found by its title: `eq`.
    Record,
    /// Calendar days from and to: `gte` and `lte`.
    Dates,
    /// Calendar days from and to, in the viewer's time zone: `gte` and `lte`.
    Datetimes,
    /// Numbers from and to: `gte` and `lte`.
    Numbers,
}

/// The JSON Schema of a field's value in the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSchema {
    /// A string up to the field's maximum length, of a format if any.
    Text {
        format: Option<&'static str>,
    },
    /// A string the engine generates.
    Generated,
    Integer,
    /// An exact number as text with the field's scale; with its currency if `currency`.
    Exact {
        currency: bool,
    },
    Boolean,
    /// A string of a format (`date`, `date-time`).
    Formatted(&'static str),
    /// One of the field's option values.
    Option,
    /// A set of the field's option values.
    Options,
    /// The id of a record of the field's target.
    Reference,
    /// The name of a stage of the field's sets.
    Stage,
}

/// How a screen shows a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// The value as it is.
    Plain,
    /// Text with its line breaks kept.
    Long,
    /// A number with grouped digits.
    Number,
    /// A number with the field's currency.
    Money,
    /// A number followed by `%`.
    Percent,
    /// A date and time in the viewer's time zone.
    Datetime,
    YesNo,
    /// The label of the chosen option.
    Option,
    /// The labels of the chosen options.
    Options,
    /// The label of the stage.
    Stage,
    /// The title of the referenced record, linked to it.
    Record,
    /// An email address linked with `mailto:`.
    Mailto,
    /// A phone number linked with `tel:`.
    Tel,
    /// A web address linked in a new tab.
    WebLink,
}

/// Everything the engine knows about one field type.
#[derive(Debug)]
pub struct TypeSpec {
    pub field_type: FieldType,
    /// The name in metadata and the API (serde's name of the variant).
    pub name: &'static str,
    pub label_zh_cn: &'static str,
    pub label_en: &'static str,
    /// For exact numbers, the scale when the field sets none.
    pub storage: Storage,
    pub parse: Parser,
    /// The filter operators the type takes.
    pub operators: &'static [Operator],
    pub widget: Widget,
    /// `None`: the filter bar offers no input for the type.
    pub filter_input: Option<FilterInput>,
    pub schema: ValueSchema,
    pub display: Display,
    /// Free text (not a choice): a record's title may be one, and it widens to plain text.
    pub text_like: bool,
    /// Rows can be ordered by it (long texts and option lists cannot).
    pub sortable: bool,
    /// Choices from the field's own `options`.
    pub has_options: bool,
    /// The engine writes it; clients and forms cannot.
    pub generated: bool,
    /// Its column is indexed even when the field does not ask: lists filter on it.
    pub indexed: bool,
    pub reference: Option<Reference>,
    /// The longest text accepted when the field sets no `max_length`; `None` when the type
    /// takes no `max_length`.
    pub max_length: Option<u32>,
    /// The computed default (`$now`, ...) that fits the type.
    pub computed_default: Option<&'static str>,
}

impl TypeSpec {
    /// The label in a locale of the screens (`en`, otherwise Chinese).
    pub fn label(&self, locale: &str) -> &'static str {
        if locale == "en" { self.label_en } else { self.label_zh_cn }
    }

    /// The type whose API name this is.
    pub fn by_name(name: &str) -> Option<&'static TypeSpec> {
        TYPES.iter().find(|spec| spec.name == name)
    }
}

impl FieldType {
    pub fn spec(self) -> &'static TypeSpec {
        &TYPES[self as usize]
    }

    pub fn is_text_like(self) -> bool {
        self.spec().text_like
    }

    pub fn is_reference(self) -> bool {
        self.spec().reference.is_some()
    }

    pub fn is_sortable(self) -> bool {
        self.spec().sortable
    }
}

/// Texts compare, order and match: every operator.
const TEXT_OPERATORS: &[Operator] = &Operator::ALL;
/// Numbers, dates and choices compare and order.
const ORDERED_OPERATORS: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::Lt,
    Operator::Lte,
    Operator::Gt,
    Operator::Gte,
    Operator::Between,
    Operator::In,
    Operator::IsNull,
];
/// Yes/no and references only compare.
const EQUALITY_OPERATORS: &[Operator] = &[Operator::Eq, Operator::Ne, Operator::In, Operator::IsNull];
/// An option list has options or not.
const LIST_OPERATORS: &[Operator] = &[Operator::In, Operator::Contains, Operator::IsNull];

// The entries of a family start from its first member (`TEXT`) or from a base (`NUMBER`,
// `CHOICE`, `REFERENCE`, never entries themselves) and override what differs.

const TEXT: TypeSpec = TypeSpec {
    field_type: FieldType::Text,
    name: "text",
    label_zh_cn: "文本",
    label_en: "Text",
    storage: Storage::Text,
    parse: value::parse_text,
    operators: TEXT_OPERATORS,
    widget: Widget::Text,
    filter_input: Some(FilterInput::Search),
    schema: ValueSchema::Text { format: None },
    display: Display::Plain,
    text_like: true,
    sortable: true,
    has_options: false,
    generated: false,
    indexed: false,
    reference: None,
    max_length: Some(255),
    computed_default: None,
};

const NUMBER: TypeSpec = TypeSpec {
    storage: Storage::Fixed(2),
    parse: value::parse_exact,
    operators: ORDERED_OPERATORS,
    widget: Widget::Decimal,
    filter_input: Some(FilterInput::Numbers),
    schema: ValueSchema::Exact { currency: false },
    display: Display::Number,
    text_like: false,
    max_length: None,
    ..TEXT
};

const CHOICE: TypeSpec = TypeSpec {
    parse: value::parse_option,
    operators: ORDERED_OPERATORS,
    widget: Widget::Select,
    filter_input: Some(FilterInput::Option),
    schema: ValueSchema::Option,
    display: Display::Option,
    text_like: false,
    has_options: true,
    max_length: None,
    ..TEXT
};

const REFERENCE: TypeSpec = TypeSpec {
    storage: Storage::Uuid,
    parse: value::parse_reference,
    operators: EQUALITY_OPERATORS,
    schema: ValueSchema::Reference,
    display: Display::Record,
    text_like: false,
    indexed: true,
    max_length: None,
    ..TEXT
};

/// Every field type, in the order of [`FieldType`]'s variants, which is also the order the
/// studio offers them in.
pub static TYPES: [TypeSpec; 19] = [
    TEXT,
    TypeSpec {
        field_type: FieldType::LongText,
        name: "long_text",
        label_zh_cn: "多行文本",
        label_en: "Long text",
        parse: value::parse_long_text,
        widget: Widget::Textarea,
        display: Display::Long,
        sortable: false,
        max_length: Some(65_535),
        ..TEXT
    },
    TypeSpec {
        field_type: FieldType::Integer,
        name: "integer",
        label_zh_cn: "整数",
        label_en: "Integer",
        storage: Storage::Integer,
        parse: value::parse_integer,
        widget: Widget::Integer,
        schema: ValueSchema::Integer,
        ..NUMBER
    },
    TypeSpec { field_type: FieldType::Decimal, name: "decimal", label_zh_cn: "小数", label_en: "Decimal", ..NUMBER },
    TypeSpec {
        field_type: FieldType::Money,
        name: "money",
        label_zh_cn: "金额",
        label_en: "Money",
        schema: ValueSchema::Exact { currency: true },
        display: Display::Money,
        ..NUMBER
    },
    TypeSpec {
        field_type: FieldType::Percent,
        name: "percent",
        label_zh_cn: "百分比",
        label_en: "Percent",
        display: Display::Percent,
        ..NUMBER
    },
    TypeSpec {
        field_type: FieldType::Date,
        name: "date",
        label_zh_cn: "日期",
        label_en: "Date",
        storage: Storage::Date,
        parse: value::parse_date,
        widget: Widget::Date,
        filter_input: Some(FilterInput::Dates),
        schema: ValueSchema::Formatted("date"),
        display: Display::Plain,
        computed_default: Some(DEFAULT_TODAY),
        ..NUMBER
    },
    TypeSpec {
        field_type: FieldType::Datetime,
        name: "datetime",
        label_zh_cn: "日期时间",
        label_en: "Date and time",
        storage: Storage::Datetime,
        parse: value::parse_datetime,
        widget: Widget::Datetime,
        filter_input: Some(FilterInput::Datetimes),
        schema: ValueSchema::Formatted("date-time"),
        display: Display::Datetime,
        computed_default: Some(DEFAULT_NOW),
        ..NUMBER
    },
    TypeSpec {
        field_type: FieldType::Boolean,
        name: "boolean",
        label_zh_cn: "是/否",
        label_en: "Yes/No",
        storage: Storage::Boolean,
        parse: value::parse_boolean,
        operators: EQUALITY_OPERATORS,
        widget: Widget::Checkbox,
        filter_input: Some(FilterInput::YesNo),
        schema: ValueSchema::Boolean,
        display: Display::YesNo,
        ..NUMBER
    },
    TypeSpec { field_type: FieldType::Select, name: "select", label_zh_cn: "单选", label_en: "Select", ..CHOICE },
    TypeSpec {
        field_type: FieldType::MultiSelect,
        name: "multi_select",
        label_zh_cn: "多选",
        label_en: "Multi-select",
        storage: Storage::List,
        parse: value::parse_options,
        operators: LIST_OPERATORS,
        widget: Widget::MultiSelect,
        filter_input: None,
        schema: ValueSchema::Options,
        display: Display::Options,
        sortable: false,
        ..CHOICE
    },
    TypeSpec {
        field_type: FieldType::Lookup,
        name: "lookup",
        label_zh_cn: "关联",
        label_en: "Lookup",
        widget: Widget::Lookup,
        filter_input: Some(FilterInput::Record),
        reference: Some(Reference::Target),
        ..REFERENCE
    },
    TypeSpec {
        field_type: FieldType::User,
        name: "user",
        label_zh_cn: "用户",
        label_en: "User",
        widget: Widget::User,
        filter_input: Some(FilterInput::User),
        reference: Some(Reference::Entity(crate::USER_ENTITY)),
        computed_default: Some(DEFAULT_ME),
        ..REFERENCE
    },
    TypeSpec {
        field_type: FieldType::Email,
        name: "email",
        label_zh_cn: "邮箱",
        label_en: "Email",
        parse: value::parse_email,
        widget: Widget::Email,
        schema: ValueSchema::Text { format: Some("email") },
        display: Display::Mailto,
        max_length: Some(254),
        ..TEXT
    },
    TypeSpec {
        field_type: FieldType::Phone,
        name: "phone",
        label_zh_cn: "电话",
        label_en: "Phone",
        parse: value::parse_phone,
        widget: Widget::Tel,
        display: Display::Tel,
        max_length: Some(40),
        ..TEXT
    },
    TypeSpec {
        field_type: FieldType::Url,
        name: "url",
        label_zh_cn: "网址",
        label_en: "URL",
        parse: value::parse_url,
        widget: Widget::Url,
        schema: ValueSchema::Text { format: Some("uri") },
        display: Display::WebLink,
        max_length: Some(2_048),
        ..TEXT
    },
    TypeSpec {
        field_type: FieldType::Region,
        name: "region",
        label_zh_cn: "地区",
        label_en: "Region",
        parse: value::parse_region,
        widget: Widget::Region,
        filter_input: Some(FilterInput::Province),
        ..TEXT
    },
    TypeSpec {
        field_type: FieldType::AutoNumber,
        name: "auto_number",
        label_zh_cn: "自动编号",
        label_en: "Auto number",
        parse: value::refuse_generated,
        schema: ValueSchema::Generated,
        generated: true,
        max_length: None,
        ..TEXT
    },
    TypeSpec {
        field_type: FieldType::Stage,
        name: "stage",
        label_zh_cn: "阶段",
        label_en: "Stage",
        parse: value::parse_stage,
        filter_input: Some(FilterInput::Stage),
        schema: ValueSchema::Stage,
        display: Display::Stage,
        has_options: false,
        indexed: true,
        ..CHOICE
    },
];

// `FieldType::spec` finds an entry by its variant's position.
const _: () = {
    let mut i = 0;
    while i < TYPES.len() {
        assert!(TYPES[i].field_type as usize == i, "TYPES is in the order of FieldType's variants");
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entity_schema_lists_the_types_of_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../metadata/schema/entity.schema.json");
        let schema: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let listed: Vec<&str> = schema["$defs"]["field"]["properties"]["type"]["enum"]
            .as_array()
            .expect("the field type is an enum")
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        let table: Vec<&str> = TYPES.iter().map(|spec| spec.name).collect();
        assert_eq!(listed, table);
    }

    #[test]
    fn serde_names_the_types_as_the_table_does() {
        for spec in &TYPES {
            assert_eq!(serde_json::to_value(spec.field_type).unwrap(), spec.name);
            assert_eq!(serde_json::from_value::<FieldType>(Json::from(spec.name)).unwrap(), spec.field_type);
            assert_eq!(TypeSpec::by_name(spec.name).map(|s| s.field_type), Some(spec.field_type));
        }
    }

    #[test]
    fn the_schema_asks_options_of_the_types_that_have_them() {
        let schema = crate::schema::schema_json(crate::meta::DocKind::Entity);
        let with_options: Vec<&str> = schema["$defs"]["field"]["allOf"][0]["if"]["properties"]["type"]["enum"]
            .as_array()
            .expect("the first condition is on the types with options")
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        let table: Vec<&str> = TYPES.iter().filter(|spec| spec.has_options).map(|spec| spec.name).collect();
        assert_eq!(with_options, table);
    }
}
