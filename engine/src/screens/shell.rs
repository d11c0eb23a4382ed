//! The screens' shell in `ui-shell/`: MiniJinja templates, the UI string catalogs and the
//! static assets. Release builds embed them; debug builds read them from disk on every page,
//! so a template edit shows on the next load.

use std::collections::HashMap;
use std::sync::LazyLock;

use minijinja::value::{Kwargs, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "ui-shell/"]
struct Assets;

/// The languages of the screens; the first is the default.
pub const LOCALES: [&str; 2] = ["zh-CN", "en"];

/// The colour themes a user may pick (CSS variables in `app.css`).
pub const THEMES: [&str; 4] = ["blue", "green", "purple", "dark"];

/// A runaway template is stopped after this many instructions instead of hanging a worker.
const TEMPLATE_FUEL: u64 = 20_000_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Every template is HTML, whatever its name: values are always escaped.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_loader(|name| {
        let Some(file) = Assets::get(&format!("templates/{name}")) else {
            return Ok(None);
        };
        String::from_utf8(file.data.into_owned())
            .map(Some)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("template {name} is not UTF-8: {e}")))
    });
    env.add_function("t", translate);
    env
}

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(environment);

/// Renders a page template with its context.
pub fn render(name: &str, context: Value) -> Result<String, Error> {
    if cfg!(debug_assertions) {
        environment().get_template(name)?.render(context)
    } else {
        ENVIRONMENT.get_template(name)?.render(context)
    }
}

type Catalog = HashMap<String, String>;

static CATALOGS: LazyLock<HashMap<&'static str, Catalog>> = LazyLock::new(|| {
    LOCALES
        .iter()
        .map(|locale| {
            let file = Assets::get(&format!("i18n/{locale}.json")).expect("every locale has a catalog");
            let catalog: Catalog = serde_json::from_slice(&file.data).expect("UI catalogs are flat JSON objects");
            (*locale, catalog)
        })
        .collect()
});

/// A UI string in a language, with `{name}` placeholders filled; the key itself when missing,
/// so a forgotten string shows up instead of vanishing.
pub fn text(locale: &str, key: &str, args: &[(&str, String)]) -> String {
    let template = CATALOGS.get(locale).and_then(|c| c.get(key)).map_or(key, String::as_str);
    let mut out = template.to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// `t("key", name=value)` in templates, in the page's `locale`.
fn translate(state: &State, key: &str, kwargs: Kwargs) -> Result<String, Error> {
    let locale = state.lookup("locale").map(|v| v.to_string()).unwrap_or_else(|| LOCALES[0].to_owned());
    let args: Vec<(&str, String)> =
        kwargs.args().map(|name| Ok((name, kwargs.get::<Value>(name)?.to_string()))).collect::<Result<_, Error>>()?;
    Ok(text(&locale, key, &args))
}

/// Every key of a catalog, to check that the languages agree.
pub fn catalog_keys(locale: &str) -> Vec<String> {
    let mut keys: Vec<String> = CATALOGS.get(locale).map(|c| c.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

/// A static asset and its content type.
pub fn asset(path: &str) -> Option<(Vec<u8>, &'static str)> {
    let file = Assets::get(&format!("static/{path}"))?;
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Some((file.data.into_owned(), content_type))
}
