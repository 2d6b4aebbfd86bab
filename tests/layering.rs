//! The module structure of `src/`, checked from the source text: every `crate::` path a file
//! names (in `use` lines, braces expanded, and inline paths) must point at the same or a
//! lower floor of [`FLOORS`], and no two files may import each other, directly or around a
//! longer loop. docs/architecture.md explains the floors; a new top-level module must be
//! given its floor here, so the test fails until someone decides where it belongs.
//!
//! It reads text, not the compiler's resolution: comments are stripped, a path is resolved
//! to the deepest file that exists (`crate::dns::message::Rr` → `src/dns/message.rs`), and a
//! path to a folder's `mod.rs` from inside that folder is not an edge (the folder's façade
//! re-exports its own children).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of `src/`, lowest floor first. A module may import its own floor and
/// the floors before it, never one after it.
const FLOORS: &[&str] = &[
    // the unsafe edge: libc and io_uring calls behind safe functions
    "sys",
    // counters and log macros, shared by every thread
    "stats",
    // sans-io protocol cores: bytes in, values out
    "framestream",
    "dns",
    "dnstap",
    // PowerDNS protobuf logging, converted to dnstap payloads
    "powerdns",
    "filter",
    "record",
    "transform",
    "format",
    // I/O edges: outputs, the reader→writer queue and writers, the listeners
    "sink",
    "pipeline",
    "input",
    // observers and drivers of the running pipeline
    "metrics",
    "offline",
    // everything the user writes, compiled; only main.rs stands above it
    "config",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line comments, doc comments, block comments) and without
/// the contents of string literals, so a path mentioned in prose or in a message is not an
/// import.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' {
            // a raw string r"..." / r#"..."# never holds a `crate::` import either; the
            // plain scan below is enough for this code base's strings
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // a char literal such as '"' or '\''; lifetimes ('a) fall through
            let end = b[i + 1..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(b.len(), |p| i + 2 + p);
            let end = if b[i + 1] == b'\\' {
                b[i + 3..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(b.len(), |p| i + 4 + p)
            } else {
                end
            };
            out.push_str("' '");
            i = end;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands one `use` tree (`crate::a::{b::C, d}`) into its flat paths.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            let path = tree.split(" as ").next().unwrap_or(tree).trim();
            out.push(format!("{prefix}{path}"));
        }
        Some(open) => {
            let head = &tree[..open];
            let close = tree.rfind('}').expect("balanced braces in a use tree");
            let inner = &tree[open + 1..close];
            let mut depth = 0;
            let mut start = 0;
            let mut parts = Vec::new();
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(&inner[start..k]);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            parts.push(&inner[start..]);
            for p in parts.into_iter().filter(|p| !p.trim().is_empty()) {
                expand(&format!("{prefix}{head}"), p, out);
            }
        }
    }
}

/// Every path to another module the code names, as segment lists from the crate root:
/// `crate::…` anywhere, and `super::…` / `self::…` in `use` lines (resolved against `base`,
/// the file's own module path; pass `None` for test code, whose inline `mod tests` changes
/// what `super` means).
fn crate_paths(code: &str, file: &Path, base: Option<&[String]>) -> Vec<Vec<String>> {
    let mut flat = Vec::new();
    // `use` statements, whose braces hide paths from the inline scan
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = at == 0
            || !(rest.as_bytes()[at - 1].is_ascii_alphanumeric()
                || rest.as_bytes()[at - 1] == b'_');
        let stmt_end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        if boundary {
            let tree = rest[at + 4..stmt_end].trim();
            if tree.starts_with("crate::")
                || (base.is_some() && (tree.starts_with("super::") || tree.starts_with("self::")))
            {
                expand("", tree, &mut flat);
            }
        }
        if stmt_end >= rest.len() {
            break;
        }
        rest = &rest[stmt_end + 1..];
    }
    // inline paths: `crate::a::b::c`
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(p) = code[i..].find("crate::") {
        let at = i + p;
        let boundary = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let mut end = at;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
        {
            end += 1;
        }
        if boundary {
            flat.push(code[at..end].trim_end_matches(':').to_string());
        }
        i = end.max(at + 7);
    }
    flat.into_iter()
        .filter_map(|p| {
            let segs: Vec<String> = p
                .split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let head = segs.first().map(String::as_str);
            match (head, base) {
                (Some("crate"), _) if segs.len() > 1 => Some(segs[1..].to_vec()),
                (Some("self"), Some(base)) => Some(
                    base.iter()
                        .cloned()
                        .chain(segs[1..].iter().cloned())
                        .collect(),
                ),
                (Some("super"), Some(base)) => {
                    let ups = segs.iter().take_while(|s| *s == "super").count();
                    let keep = base.len().checked_sub(ups)?;
                    Some(
                        base[..keep]
                            .iter()
                            .cloned()
                            .chain(segs[ups..].iter().cloned())
                            .collect(),
                    )
                }
                _ => {
                    assert!(
                        segs.is_empty() || ["crate", "self", "super"].contains(&segs[0].as_str()),
                        "{}: {p}",
                        file.display()
                    );
                    None
                }
            }
        })
        .filter(|segs| !segs.is_empty())
        .collect()
}

/// A file's own module path (`src/dns/name.rs` → `dns::name`, `src/dns/mod.rs` → `dns`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("file under src")
        .with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    segs
}

/// The code before the file's `#[cfg(test)] mod …` block (tests sit at the bottom), and the
/// rest.
fn split_tests(code: &str) -> (&str, &str) {
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let at = from + p;
        let after = code[at + 12..].trim_start();
        if after.starts_with("mod ")
            || after.starts_with("pub mod ")
            || after.starts_with("pub(crate) mod ")
        {
            return code.split_at(at);
        }
        from = at + 12;
    }
    (code, "")
}

/// The deepest file of `src/` that a path names, if any.
fn resolve(src: &Path, segs: &[String]) -> Option<PathBuf> {
    for n in (1..=segs.len()).rev() {
        let rel: PathBuf = segs[..n].iter().collect();
        for cand in [
            src.join(&rel).with_extension("rs"),
            src.join(&rel).join("mod.rs"),
        ] {
            if cand.is_file() {
                return Some(cand);
            }
        }
    }
    None
}

/// The top-level module a file belongs to (`src/dns/name.rs` → `dns`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("file under src");
    let first = rel.components().next().expect("non-empty path");
    let s = first.as_os_str().to_string_lossy();
    s.trim_end_matches(".rs").to_string()
}

/// The folder a `mod.rs` (or `foo.rs` with a `foo/` beside it) is the façade of.
fn facade_dir(file: &Path) -> Option<PathBuf> {
    if file.file_name().is_some_and(|n| n == "mod.rs") {
        return file.parent().map(Path::to_path_buf);
    }
    let dir = file.with_extension("");
    dir.is_dir().then_some(dir)
}

struct Graph {
    /// file → files it imports (façade edges removed)
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    /// (importing file, imported module, path as written) for every cross-module import
    module_imports: Vec<(PathBuf, String, String)>,
}

fn read_graph() -> Graph {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut module_imports = Vec::new();
    for f in &files {
        if f.ends_with("lib.rs") || f.ends_with("main.rs") {
            continue;
        }
        let text = fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let code = code_only(&text);
        let me = top_module(&src, f);
        let base = module_path(&src, f);
        let (main, tests) = split_tests(&code);
        let mut paths = crate_paths(main, f, Some(&base));
        paths.extend(crate_paths(tests, f, None));
        let out = edges.entry(f.clone()).or_default();
        for segs in paths {
            let target_module = segs[0].clone();
            let is_module = src.join(&target_module).is_dir()
                || src.join(format!("{target_module}.rs")).is_file();
            if target_module != me && is_module {
                module_imports.push((f.clone(), target_module.clone(), segs.join("::")));
            }
            let Some(target) = resolve(&src, &segs) else {
                continue;
            };
            if &target == f {
                continue;
            }
            if facade_dir(&target).is_some_and(|d| f.starts_with(&d)) {
                continue;
            }
            out.insert(target);
        }
    }
    Graph {
        edges,
        module_imports,
    }
}

fn rank(module: &str) -> Option<usize> {
    FLOORS.iter().position(|m| *m == module)
}

#[test]
fn every_module_has_a_floor() {
    let src = src_dir();
    let mut missing = Vec::new();
    for e in fs::read_dir(&src).expect("src") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .expect("name")
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        if rank(&name).is_none() {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "src/ modules with no floor in tests/layering.rs: {missing:?}"
    );
}

#[test]
fn no_module_imports_a_higher_floor() {
    let src = src_dir();
    let g = read_graph();
    let mut upward = BTreeSet::new();
    for (file, target, path) in &g.module_imports {
        let me = top_module(&src, file);
        let (Some(mine), Some(theirs)) = (rank(&me), rank(target)) else {
            continue;
        };
        if theirs > mine {
            let rel = file.strip_prefix(&src).expect("under src");
            upward.insert(format!(
                "src/{} ({me}) imports crate::{path} ({target})",
                rel.display()
            ));
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up the floors of docs/architecture.md:\n  {}",
        upward.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn no_file_import_circles() {
    let src = src_dir();
    let g = read_graph();
    // Tarjan's strongly connected components; any component of two or more files is a circle.
    struct St<'a> {
        g: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a Path, usize>,
        low: BTreeMap<&'a Path, usize>,
        on: BTreeSet<&'a Path>,
        stack: Vec<&'a Path>,
        next: usize,
        found: Vec<Vec<&'a Path>>,
    }
    fn visit<'a>(s: &mut St<'a>, v: &'a Path) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        let g = s.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_path();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.found.push(comp);
            }
        }
    }
    let mut s = St {
        g: &g.edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in g.edges.keys() {
        if !s.index.contains_key(v.as_path()) {
            visit(&mut s, v);
        }
    }
    let circles: Vec<String> = s
        .found
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c
                .iter()
                .map(|p| format!("src/{}", p.strip_prefix(&src).expect("under src").display()))
                .collect();
            names.sort();
            names.join(" <-> ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other:\n  {}",
        circles.join("\n  ")
    );
}

// The checker's own parts, on made-up text: each must be able to see what it looks for.

#[test]
fn use_trees_expand_to_every_path() {
    let code =
        "use crate::dns::{message::{Rr, Edns}, name::Name as N};\nfn f() { crate::stats::x(); }";
    let paths: Vec<String> = crate_paths(code, Path::new("x.rs"), None)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    for want in [
        "dns::message::Rr",
        "dns::message::Edns",
        "dns::name::Name",
        "stats::x",
    ] {
        assert!(
            paths.iter().any(|p| p == want),
            "{want} missing from {paths:?}"
        );
    }
}

#[test]
fn super_and_self_resolve_against_the_file() {
    let base = vec!["dns".to_string(), "edns".to_string()];
    let paths: Vec<String> = crate_paths(
        "use super::message::Rr;\nuse self::inner::X;",
        Path::new("x.rs"),
        Some(&base),
    )
    .iter()
    .map(|p| p.join("::"))
    .collect();
    assert_eq!(
        paths,
        vec![
            "dns::message::Rr".to_string(),
            "dns::edns::inner::X".to_string()
        ]
    );
}

#[test]
fn comments_and_strings_are_not_imports() {
    let code = code_only("// use crate::config::X;\n/* crate::cli */ let s = \"crate::sink\"; let c = '\"'; use crate::dns::Name;");
    let paths: Vec<String> = crate_paths(&code, Path::new("x.rs"), None)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        paths,
        vec!["dns::Name".to_string(), "dns::Name".to_string()]
    );
}
