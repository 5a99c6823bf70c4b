//! The documentation cannot drift from the code: every `just` recipe,
//! setting and route that README.md and docs/ name exists, and every setting
//! and route the server has is documented.
//!
//! Settings are checked against the real loader ([`Settings::load_from`],
//! which refuses unknown names), routes against the server's own OpenAPI
//! document, recipes against the justfile.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use config::{Config, File, FileFormat};
use serde_json::Value;
use txwatch_server::{Settings, SettingsError};

use crate::helpers::spawn_app;

/// Settings that are not `APP_<SECTION>__<KEY>` names but are documented
/// as settings all the same.
const PLAIN_SETTINGS: &[&str] = &["DATABASE_URL", "REDIS_URL", "PORT"];

/// OpenAPI paths that are the files of a documented page (`/` and `/docs`),
/// not routes a reader calls.
const PAGE_FILES: &[&str] = &["/assets/{file}", "/docs/", "/docs/{file}"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every Markdown file in docs/, as `(name, text)`.
fn documents() -> Vec<(String, String)> {
    let root = repository();
    let mut paths = vec![root.join("README.md")];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("docs/ is readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    in_docs.sort();
    paths.extend(in_docs);
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            (name, text)
        })
        .collect()
}

fn document(name: &str) -> String {
    documents()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} exists"))
        .1
}

/// The words made of `allowed` characters that follow each occurrence of
/// `marker` in `text` (the marker itself left out).
fn words_after(text: &str, marker: &str, allowed: impl Fn(char) -> bool) -> Vec<String> {
    text.match_indices(marker)
        .map(|(at, _)| {
            text[at + marker.len()..]
                .chars()
                .take_while(|c| allowed(*c))
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// Every `APP_<SECTION>__<KEY>` name in `text`.
fn setting_names(text: &str) -> BTreeSet<String> {
    words_after(text, "APP_", |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
    })
    .into_iter()
    .filter(|rest| rest.contains("__"))
    .map(|rest| format!("APP_{}", rest.trim_end_matches('_')))
    .collect()
}

/// Whether the loader knows `name`: loading with it set must not fail with
/// "unknown field" (a wrong value for a known setting fails otherwise).
fn loader_knows(name: &str) -> bool {
    let vars = [(name.to_owned(), "x".to_owned())].into_iter().collect();
    match Settings::load_from(vars) {
        Err(SettingsError::Load(error)) => !error.to_string().contains("unknown field"),
        _ => true,
    }
}

#[test]
fn every_setting_the_docs_name_exists() {
    assert!(
        !loader_knows("APP_HTTP__NO_SUCH_SETTING") && !loader_knows("APP_NOSECTION__KEY"),
        "the check must be able to tell an unknown setting"
    );
    let mut unknown = Vec::new();
    let mut named = 0;
    let env_example =
        std::fs::read_to_string(repository().join(".env.example")).expect(".env.example exists");
    let sources = documents()
        .into_iter()
        .chain([(".env.example".to_owned(), env_example)]);
    for (file, text) in sources {
        for name in setting_names(&text) {
            named += 1;
            if !loader_knows(&name) {
                unknown.push(format!("{file}: {name}"));
            }
        }
    }
    assert!(named > 20, "found only {named} setting names in the docs");
    assert!(
        unknown.is_empty(),
        "settings named but not known: {unknown:#?}"
    );
}

/// Every setting the compiled-in defaults define, as `APP_<SECTION>__<KEY>`.
fn default_settings() -> BTreeSet<String> {
    let defaults = Config::builder()
        .add_source(File::from_str(
            include_str!("../../src/defaults.toml"),
            FileFormat::Toml,
        ))
        .build()
        .expect("the defaults parse");
    let table = defaults
        .try_deserialize::<serde_json::Map<String, Value>>()
        .expect("the defaults are a table");
    let mut names = BTreeSet::new();
    for (section, keys) in table {
        let keys = keys.as_object().expect("each section is a table");
        for key in keys.keys() {
            names.insert(format!(
                "APP_{}__{}",
                section.to_uppercase(),
                key.to_uppercase()
            ));
        }
    }
    names
}

#[test]
fn every_setting_is_documented_in_operations() {
    let operations = document("docs/operations.md");
    let documented = setting_names(&operations);
    let defaults = default_settings();
    assert!(
        defaults.len() > 20,
        "found only {} defaults",
        defaults.len()
    );
    let missing: Vec<&String> = defaults.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "settings missing from docs/operations.md: {missing:#?}"
    );
    for plain in PLAIN_SETTINGS {
        assert!(
            operations.contains(&format!("`{plain}`")),
            "{plain} is not documented in docs/operations.md"
        );
    }
}

/// The recipe names the justfile defines.
fn recipes() -> BTreeSet<String> {
    let justfile = std::fs::read_to_string(repository().join("justfile")).expect("justfile");
    justfile
        .lines()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter(|line| !line.contains(":="))
        .filter_map(|line| line.split_once(':'))
        .map(|(head, _)| head.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn every_recipe_the_docs_name_exists() {
    let recipes = recipes();
    assert!(recipes.contains("test") && recipes.contains("check"));
    let mut unknown = Vec::new();
    let mut named = 0;
    for (file, text) in documents() {
        // `just <recipe>` in code spans, and `just <recipe>` starting a line
        // of a code block.
        let mut names = words_after(&text, "`just ", recipe_char);
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("just ") {
                names.push(rest.chars().take_while(|c| recipe_char(*c)).collect());
            }
        }
        for name in names.into_iter().filter(|n| !n.is_empty()) {
            named += 1;
            if !recipes.contains(&name) {
                unknown.push(format!("{file}: just {name}"));
            }
        }
    }
    assert!(named > 20, "found only {named} recipes named in the docs");
    assert!(
        unknown.is_empty(),
        "recipes named but not in the justfile: {unknown:#?}"
    );
}

fn recipe_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// Every `METHOD /path` the docs name, as `(lowercase method, path)`; HEAD
/// counts as GET (the server answers HEAD wherever it answers GET).
fn routes_named(text: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for method in ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE"] {
        for path in words_after(text, &format!("{method} /"), |c| {
            c.is_ascii_alphanumeric() || "_{}./-".contains(c)
        })
        .into_iter()
        .chain(
            // the root itself: "GET /" followed by anything else
            text.match_indices(&format!("{method} /"))
                .filter(|(at, m)| {
                    !text[at + m.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || "_{".contains(c))
                })
                .map(|_| String::new()),
        ) {
            let path = format!("/{}", path.trim_end_matches('.'));
            let method = if method == "HEAD" { "get" } else { method };
            routes.insert((method.to_lowercase(), path));
        }
    }
    routes
}

#[actix_web::test]
async fn every_route_the_docs_name_exists_and_every_route_is_documented() {
    let app = spawn_app().await;
    let openapi: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("the document is JSON");
    let mut served = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            served.insert((method.clone(), path.clone()));
        }
    }
    assert!(
        served.len() > 10,
        "the document lists {} routes",
        served.len()
    );

    let mut named = BTreeSet::new();
    for (file, text) in documents() {
        for route in routes_named(&text) {
            named.insert((file.clone(), route));
        }
    }
    let unknown: Vec<_> = named
        .iter()
        .filter(|(_, route)| !served.contains(route))
        .collect();
    assert!(
        unknown.is_empty(),
        "routes named but not served: {unknown:#?}"
    );

    let documented: BTreeSet<_> = named.into_iter().map(|(_, route)| route).collect();
    let undocumented: Vec<_> = served
        .iter()
        .filter(|(_, path)| !PAGE_FILES.contains(&path.as_str()))
        .filter(|route| !documented.contains(route))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes served but named nowhere in the docs: {undocumented:#?}"
    );
}

#[test]
fn the_route_reader_reads_what_the_docs_write() {
    let routes =
        routes_named("`GET /transactions?user_id=x`, then `POST /transactions/batch`. And GET /.");
    let expected: BTreeSet<(String, String)> = [
        ("get", "/transactions"),
        ("post", "/transactions/batch"),
        ("get", "/"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(routes, expected);
}
