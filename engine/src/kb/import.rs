//! Bulk import of knowledge articles from files (知识批量导入): each Markdown, HTML or text
//! file becomes one article — its title from the first `# heading`, `<title>` or `<h1>`, or
//! the file's name; its content as plain text. Every file is checked before anything is
//! written, and the articles are created in one unit of the save pipeline: all or none.

use crm_model::Action;
use serde_json::json;
use uuid::Uuid;

use super::ARTICLE;
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::records::{Source, Unit};

/// Largest file taken: an article, not a manual.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;

/// Most files one import takes.
pub const MAX_FILES: usize = 200;

/// Longest title an article holds (its `name` field's maximum length).
const MAX_TITLE_CHARS: usize = 200;

/// A file as it was uploaded. `too_large` is set when its bytes were cut off at
/// [`MAX_FILE_BYTES`] while reading, so a huge file is never held in memory whole.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
    pub too_large: bool,
}

/// Why a file cannot become an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProblem {
    Empty,
    NotUtf8,
    TooLarge,
    UnknownKind,
}

impl FileProblem {
    fn code(self) -> &'static str {
        match self {
            FileProblem::Empty => "empty_file",
            FileProblem::NotUtf8 => "not_utf8",
            FileProblem::TooLarge => "too_large",
            FileProblem::UnknownKind => "unknown_file_type",
        }
    }

    fn message(self, file: &str) -> String {
        match self {
            FileProblem::Empty => format!("`{file}` is empty"),
            FileProblem::NotUtf8 => format!("`{file}` is not UTF-8 text"),
            FileProblem::TooLarge => format!("`{file}` is larger than 2 MB"),
            FileProblem::UnknownKind => format!("`{file}` is not a .md, .html or .txt file"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Markdown,
    Html,
    Text,
}

/// The name a browser gave, without any folder it may have sent along.
pub fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn kind_of(name: &str) -> Option<(Kind, &str)> {
    let name = base_name(name);
    let (stem, extension) = name.rsplit_once('.')?;
    let kind = match extension.to_ascii_lowercase().as_str() {
        "md" | "markdown" => Kind::Markdown,
        "html" | "htm" => Kind::Html,
        "txt" => Kind::Text,
        _ => return None,
    };
    Some((kind, stem))
}

/// The title and content of the article a file becomes.
pub fn article_of(upload: &Upload) -> Result<(String, String), FileProblem> {
    let (kind, stem) = kind_of(&upload.name).ok_or(FileProblem::UnknownKind)?;
    if upload.too_large || upload.bytes.len() > MAX_FILE_BYTES {
        return Err(FileProblem::TooLarge);
    }
    let text = std::str::from_utf8(&upload.bytes).map_err(|_| FileProblem::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n");
    let (title, content) = match kind {
        Kind::Markdown => markdown(&text),
        Kind::Html => (html_title(&text), html_to_text(&text)),
        Kind::Text => (None, text.trim().to_owned()),
    };
    if content.trim().is_empty() {
        return Err(FileProblem::Empty);
    }
    let title = title.filter(|t| !t.is_empty()).unwrap_or_else(|| stem.trim().to_owned());
    Ok((title.chars().take(MAX_TITLE_CHARS).collect(), content))
}

/// Markdown: the first level-one heading is the title and leaves the content; the rest is
/// kept as it is, Markdown being readable as plain text.
fn markdown(text: &str) -> (Option<String>, String) {
    let heading = text.lines().position(|line| line.starts_with("# ") || line == "#");
    let Some(at) = heading else { return (None, text.trim().to_owned()) };
    let line = text.lines().nth(at).unwrap_or_default();
    let title = line.trim_start_matches('#').trim().trim_end_matches('#').trim().to_owned();
    let rest: Vec<&str> = text.lines().enumerate().filter(|(i, _)| *i != at).map(|(_, l)| l).collect();
    (Some(title), rest.join("\n").trim().to_owned())
}

/// The text of the first element named `tag` (`title`, `h1`), tags inside it removed.
fn element_text(html: &str, tag: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(&format!("<{tag}")) {
        let start = from + found;
        let after = start + tag.len() + 1;
        // `<h1>` and `<h1 class=..>`, not `<h10>` or `<titles>`.
        if lower[after..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace()) {
            let open_end = after + lower[after..].find('>')? + 1;
            let close = open_end + lower[open_end..].find(&format!("</{tag}"))?;
            let text = html_to_text(&html[open_end..close]);
            return Some(text.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        from = after;
    }
    None
}

fn html_title(html: &str) -> Option<String> {
    element_text(html, "title").filter(|t| !t.is_empty()).or_else(|| element_text(html, "h1"))
}

/// Elements whose content is not text a reader sees: dropped whole.
const DROPPED: [&str; 6] = ["script", "style", "title", "template", "noscript", "head"];

/// Elements that end a line of text.
const BLOCKS: [&str; 27] = [
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
    "dd",
    "dt",
    "dl",
    "main",
    "nav",
    "aside",
];

/// Plain text of an HTML document: tags removed (scripts, styles and the head with their
/// content), block elements as line breaks, character references decoded, blank lines dropped.
/// The result is text, never markup: it is stored and escaped wherever it is shown.
pub fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut at = 0;
    while at < html.len() {
        let Some(next) = html[at..].find('<') else {
            out.push_str(&decode_entities(&html[at..]));
            break;
        };
        out.push_str(&decode_entities(&html[at..at + next]));
        at += next;
        if lower[at..].starts_with("<!--") {
            at = lower[at..].find("-->").map_or(html.len(), |end| at + end + 3);
            continue;
        }
        let name_start = at + 1 + usize::from(lower[at + 1..].starts_with('/'));
        let name: String = lower[name_start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if name.is_empty() && !lower[at + 1..].starts_with(['!', '?']) {
            // A `<` that opens no tag is text.
            out.push('<');
            at += 1;
            continue;
        }
        let Some(end) = tag_end(&lower, at) else { break };
        let closing = name_start > at + 1;
        at = end;
        if !closing && DROPPED.contains(&name.as_str()) {
            let close = format!("</{name}");
            at = lower[at..].find(&close).map_or(html.len(), |found| {
                let close_at = at + found;
                tag_end(&lower, close_at).unwrap_or(html.len())
            });
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            out.push('\n');
        }
    }
    fold_lines(&out)
}

/// Where a tag that starts at `at` ends (after its `>`), skipping `>` inside quoted values.
fn tag_end(lower: &str, at: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in lower[at..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(at + i + 1),
            _ => {}
        }
    }
    None
}

/// Spaces folded within lines, lines trimmed, blank lines dropped: the layout of the source
/// and the breaks of nested blocks say nothing about the text.
fn fold_lines(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Character references: numeric ones and the named ones articles use; an unknown one stays.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|end| *end <= 12);
        let decoded = end.and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        // NUL and other controls are refused in text fields: a space stands in.
        return char::from_u32(code).map(|c| if c.is_control() && c != '\n' && c != '\t' { ' ' } else { c });
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "middot" => '·',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "times" => '×',
        "yen" => '¥',
        _ => return None,
    })
}

/// Creates one article per file in the category, through the save pipeline as an import:
/// every file is checked first and nothing is written if any is bad, each error naming its
/// file (`files/{n}`); a value the pipeline refuses is named `files/{n}/{field}`.
pub async fn import(
    app: &App,
    principal: &Principal,
    category: Option<&str>,
    uploads: &[Upload],
) -> ApiResult<Vec<Uuid>> {
    principal.entity(&app.catalog(), ARTICLE, Action::Import)?;
    if uploads.is_empty() {
        return Err(ApiError::field("files", "required", "choose at least one file"));
    }
    if uploads.len() > MAX_FILES {
        return Err(ApiError::field("files", "too_many", format!("at most {MAX_FILES} files at once")));
    }
    let category = category.map(str::trim).filter(|c| !c.is_empty());
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (n, upload) in uploads.iter().enumerate() {
        match article_of(upload) {
            Ok((title, content)) => {
                rows.push(json!({"name": title, "content": content, "category": category}));
            }
            Err(problem) => errors.push(FieldError::new(
                format!("files/{n}"),
                problem.code(),
                problem.message(base_name(&upload.name)),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let mut unit = Unit::new(app, principal, Source::Import).await?;
    let ids = unit.create_many(ARTICLE, &rows).await.map_err(|e| per_file(e, uploads))?;
    unit.commit().await?;
    Ok(ids)
}

/// The pipeline names a refused value `records/{row}/{field}`: here the row is a file.
fn per_file(error: ApiError, uploads: &[Upload]) -> ApiError {
    let ApiError::Invalid(errors) = error else { return error };
    let renamed = errors
        .into_iter()
        .map(|e| {
            let Some(rest) = e.field.strip_prefix("records/") else { return e };
            let (row, field) = rest.split_once('/').unwrap_or((rest, ""));
            let file = row.parse::<usize>().ok().and_then(|n| uploads.get(n)).map(|u| base_name(&u.name));
            let message = match file {
                Some(file) => format!("`{file}`: {}", e.message),
                None => e.message,
            };
            FieldError { field: format!("files/{row}/{field}"), message, ..e }
        })
        .collect();
    ApiError::Invalid(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(name: &str, text: &str) -> Upload {
        Upload { name: name.into(), bytes: text.as_bytes().to_vec(), too_large: false }
    }

    #[test]
    fn html_becomes_text_without_scripts_styles_or_markup() {
        let html = r#"<!doctype html><html><head><title>打印机 &amp; 驱动</title>
            <style>p { color: red }</style><script>alert("<p>x</p>")</script></head>
            <body><h1 class="t">安装驱动</h1><!-- <p>hidden</p> --><p>先&nbsp;下载 &lt;驱动&gt; &#20013;&#x6587;</p>
            <p data-x="a>b">再<b>重启</b></p><img src=x onerror=alert(1)>5 < 6</body></html>"#;
        let text = html_to_text(html);
        assert_eq!(text, "安装驱动\n先 下载 <驱动> 中文\n再重启\n5 < 6");
        assert_eq!(html_title(html).as_deref(), Some("打印机 & 驱动"));
        assert_eq!(html_title("<H1>标题 <em>一</em></H1><p>x</p>").as_deref(), Some("标题 一"));
        assert_eq!(html_title("<h10>no</h10>"), None);
    }

    #[test]
    fn an_unclosed_script_drops_the_rest_and_unknown_entities_stay() {
        assert_eq!(html_to_text("<p>a &bogus; &#0; b</p><script>never closed"), "a &bogus; b");
        assert_eq!(html_to_text("<p>x</p><scr"), "x");
    }

    #[test]
    fn markdown_takes_its_first_heading_as_title() {
        let (title, content) =
            article_of(&upload("notes.md", "\u{feff}intro\n# 退货流程 #\n\n## 步骤\n1. 登记")).unwrap();
        assert_eq!(title, "退货流程");
        assert_eq!(content, "intro\n\n## 步骤\n1. 登记");
        let (title, _) = article_of(&upload("dir/无标题.MD", "## 只有二级\n正文")).unwrap();
        assert_eq!(title, "无标题");
        let (title, content) = article_of(&upload("c:\\docs\\说明.txt", " 正文 \r\n")).unwrap();
        assert_eq!((title.as_str(), content.as_str()), ("说明", "正文"));
    }

    #[test]
    fn bad_files_are_named_for_what_is_wrong() {
        assert_eq!(article_of(&upload("a.md", " \n")), Err(FileProblem::Empty));
        assert_eq!(article_of(&upload("a.html", "<p> </p><script>x</script>")), Err(FileProblem::Empty));
        assert_eq!(article_of(&upload("a.pdf", "x")), Err(FileProblem::UnknownKind));
        assert_eq!(article_of(&upload("noextension", "x")), Err(FileProblem::UnknownKind));
        let latin1 = Upload { name: "a.txt".into(), bytes: vec![0xe9, 0x74, 0xe9], too_large: false };
        assert_eq!(article_of(&latin1), Err(FileProblem::NotUtf8));
        let big = Upload { name: "a.txt".into(), bytes: vec![b'a'; 16], too_large: true };
        assert_eq!(article_of(&big), Err(FileProblem::TooLarge));
    }
}
