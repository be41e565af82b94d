//! What an object key is and what its name says: a valid key, its URL form, an entry
//! point (HTML), an extension, a content hash in the name. A leaf: every layer asks it.

/// Why `key` is not a key (a `/`-separated relative path: no empty, `.` or `..`
/// segment, no NUL), if it is not.
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("empty");
    }
    if key.contains('\0') {
        return Some("contains NUL");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return Some("starts or ends with '/'");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("has an empty, '.' or '..' segment");
    }
    None
}

/// Percent-encode a key for a URL path or `x-amz-copy-source`, keeping `/`.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// HTML is what visitors enter through (and what a CDN may have cached by route).
pub fn is_html(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with(".html") || k.ends_with(".htm")
}

/// Does the last segment of `path` have an extension (`app.js`, not `dashboard`)?
pub fn has_extension(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

// Fingerprints.
// Does a file name carry a content hash, as bundlers and generators write them?
//
// A fingerprinted name never changes content, so `fingerprinted = true` rules may serve it
// as `immutable` and skew protection keeps it for open pages. Getting this wrong one way
// costs a year of stale caches; the other way only loses caching. So the test is
// conservative: a name whose hash-shaped part reads like a word (`index-overview.html`,
// `struct.BTreeMap.js`, `Inter-SemiBold.woff2`) is not fingerprinted, and HTML never is
// (entry points keep their names; rustdoc's `struct.BTreeMap.html` is not a hash).
//
// Styles recognised:
// - hexadecimal, 8 to 64 lowercase digits with at least one digit and one letter, after a
// dot or a dash: webpack `main.8608ea7d.min.css` (also 20), Parcel `index.1a2b3c4d.js`,
// Next.js `main-3b1e2f4a5c6d7e8f.js`, Hugo `main.<sha256>.css`, mdBook, Docusaurus;
// - Rollup / Vite / SvelteKit / Astro base64url, 8 characters after `-` or `.`
// (`index-DiwrgTda.js`, `chunk-BKD3_xQ-.js`, `index.BY2vkw8A.js`) with both cases;
// - esbuild's upper-case base32, 8 of `A-Z2-7` (`chunk-2ASZ4ACP.js`).
//
// Measured on real build output (Vite 8.3: 401 chunk names, esbuild 0.25: 42) and on the
// 178,000 file names of a Debian machine with the Rust documentation tree: 380 / 401 and
// 42 / 42 recognised; outside bundler output only three ALSA `.conf` names match.

/// Is `key`'s file name fingerprinted?
pub fn has_fingerprint(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    if ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm") {
        return false;
    }
    let dotted =
        stem.split('.').skip(1).any(hex) || stem.split('.').any(|s| hex(s) && s.len() >= 16);
    let dashed = stem.contains('-') && stem.rsplit('-').next().is_some_and(hex);
    let tail = stem.len() > 9
        && stem.is_char_boundary(stem.len() - 9)
        && stem[stem.len() - 9..].starts_with(['-', '.'])
        && short_hash(&stem[stem.len() - 8..]);
    dotted || dashed || tail
}

/// Lowercase hexadecimal of 8–64 digits, with a digit and a letter (not `deadbeef`,
/// not `20241122`).
fn hex(s: &str) -> bool {
    (8..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// An 8-character base64url (Rollup, Vite) or base32 (esbuild) hash that does not read
/// like a word.
fn short_hash(t: &str) -> bool {
    if t.len() != 8
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return false;
    }
    if hex(t) {
        return true;
    }
    let upper = t.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = t.bytes().any(|b| b.is_ascii_lowercase());
    let digit = t.bytes().any(|b| b.is_ascii_digit());
    if t.bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        // esbuild: with a digit it is a hash; all letters, only if it is no word.
        return if digit {
            upper >= 3
        } else {
            !pronounceable(&t.to_ascii_lowercase())
        };
    }
    if !lower {
        // Capitals and digits (`BF8QNONU`): a hash when a letter follows a digit; a word
        // with a number (`TURKISH8`, `JISX0213`, `IMG_1234`) is not.
        let letter_after_digit = t
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_uppercase());
        return digit && upper >= 3 && letter_after_digit;
    }
    // Lowercase only is a word, a number or rustdoc's `vmla_u16`.
    upper > 0 && !word_like(t)
}

/// Vowels, for words (`y` included: `rhythm`).
fn vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
}

/// How English words may start with two or three consonants.
const ONSETS: &[&str] = &[
    "bl", "br", "ch", "cl", "cr", "dr", "dw", "fl", "fr", "gh", "gl", "gn", "gr", "kl", "kn", "kr",
    "ph", "pl", "pr", "ps", "qu", "sc", "sh", "sk", "sl", "sm", "sn", "sp", "sq", "st", "sw", "th",
    "tr", "tw", "wh", "wr", "sch", "str", "scr", "spr", "spl", "thr", "chr", "shr", "phr", "squ",
];

/// Short words and abbreviations names are made of (`MyWidget`, `PyObject`, `HttpOnly`).
const SHORT: &[&str] = &[
    "my", "is", "to", "of", "on", "in", "at", "by", "up", "id", "if", "or", "an", "as", "be", "do",
    "go", "he", "me", "no", "so", "we", "it", "ui", "io", "js", "db", "fs", "os", "ok", "ad", "ax",
    "ex", "re", "un", "de", "di", "ip", "tv", "vr", "ar", "ai", "ml", "qr", "pi", "px", "em", "ms",
    "py", "rc", "gl", "en", "fr", "es", "jp", "cn", "uk", "us",
];

const ABBREVIATIONS: &[&str] = &[
    "str", "ext", "std", "src", "cfg", "ctx", "cmd", "lib", "pkg", "msg", "fmt", "buf", "ptr",
    "len", "vec", "idx", "num", "mgr", "btn", "nav", "img", "doc", "dlg", "pdf", "xhr", "dns",
    "tcp", "udp", "css", "svg", "png", "jpg", "gif", "xml", "rgb", "hsl", "url", "uri", "sdk",
    "cdn", "dom", "jsx", "tsx", "mjs", "cjs", "npm", "ssr", "csr", "pwa", "rss", "xsl", "http",
    "html", "smtp", "ctrl", "sync", "gzip", "mqtt", "dll", "bkg", "chk", "clk", "dbg", "hdr",
    "jwt", "kbd", "lnk", "lng", "mvc", "pwd", "rng", "rpc", "sql", "tmp", "txt", "wnd",
];

/// Could `low` (lowercase letters) be a word: a vowel, an onset English allows (or a
/// known abbreviation in front), no run of five consonants.
fn pronounceable(low: &str) -> bool {
    let b = low.as_bytes();
    if ABBREVIATIONS.contains(&low) || SHORT.contains(&low) {
        return true;
    }
    if b.len() <= 2 || !b.iter().copied().any(vowel) {
        return false;
    }
    let onset = b.iter().take_while(|c| !vowel(**c)).count();
    if onset >= 2
        && !ONSETS.contains(&&low[..onset])
        && !ABBREVIATIONS
            .iter()
            .any(|a| a.len() >= 3 && low.starts_with(a))
    {
        return false;
    }
    let mut run = 0;
    for &c in b {
        run = if vowel(c) { 0 } else { run + 1 };
        if run >= 5 {
            return false;
        }
    }
    true
}

/// Does a mixed-case tail read like an identifier made of words (`MyWidget`, `BTreeMap`,
/// `Ipv4Addr`, `FreeURLs`, `AtomicU8`) rather than random characters?
fn word_like(t: &str) -> bool {
    let parts = segments(t);
    if parts
        .iter()
        .filter(|p| p.as_bytes()[0].is_ascii_alphabetic())
        .count()
        > 4
        || parts
            .iter()
            .filter(|p| p.as_bytes()[0].is_ascii_digit())
            .count()
            >= 2
    {
        return false;
    }
    parts.iter().enumerate().all(|(i, p)| {
        let b = p.as_bytes();
        if !b[0].is_ascii_alphabetic() {
            return true; // a number, or a separator
        }
        if b.len() == 1 {
            // A letter alone: first, or before a number (`U8`, `v2`).
            return i == 0
                || parts
                    .get(i + 1)
                    .is_some_and(|n| n.as_bytes()[0].is_ascii_digit());
        }
        let acronym = b[..b.len() - 1].iter().all(u8::is_ascii_uppercase)
            && (b[b.len() - 1].is_ascii_uppercase() || b[b.len() - 1] == b's');
        if acronym {
            return b.len() <= 5 || b.iter().any(|c| vowel(c.to_ascii_lowercase()));
        }
        pronounceable(&p.to_ascii_lowercase())
    })
}

/// `MyWidget` → `My`, `Widget`; `BTreeMap` → `B`, `Tree`, `Map`; `FreeURLs` → `Free`,
/// `URLs`; `Ipv4Addr` → `Ipv`, `4`, `Addr`: capitalised words, lowercase runs, acronyms
/// (with a plural `s`), numbers, and separators each on their own.
fn segments(t: &str) -> Vec<&str> {
    let b = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else if c.is_ascii_lowercase() {
            while i < b.len() && b[i].is_ascii_lowercase() {
                i += 1;
            }
        } else if c.is_ascii_uppercase() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_uppercase() {
                j += 1;
            }
            let caps = j - i;
            if caps == 1 {
                // A capitalised word: `Widget`.
                i = j;
                while i < b.len() && b[i].is_ascii_lowercase() {
                    i += 1;
                }
            } else if j < b.len()
                && b[j] == b's'
                && !b.get(j + 1).is_some_and(u8::is_ascii_lowercase)
            {
                i = j + 1; // `URLs`
            } else if j < b.len() && b[j].is_ascii_lowercase() {
                i = j - 1; // `BTree`: the last capital starts the next word
            } else {
                i = j;
            }
        } else {
            i += 1;
        }
        out.push(&t[start..i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real names: Vite 8.3 (rolldown) and esbuild 0.25 chunks built here, Vite/SvelteKit
    /// names from node_modules, webpack/Parcel/Next.js/Hugo styles.
    #[test]
    fn bundler_names_are_fingerprinted() {
        for yes in [
            // Vite / Rollup base64url (including the Vite 5+ names with no digit)
            "assets/index-DiwrgTda.js",
            "assets/chunk-BKD3_xQ-.js",
            "assets/Button136-BTOeAbTa.js",
            "assets/Button265-C_oN0gPL.js",
            "assets/Button299-NL-JkU1T.js",
            "assets/Header170-BEdVhuMY.js",
            "assets/MyWidget_330-COpgVYrx.js",
            "assets/analytics323-CQoDUvLu.js",
            "assets/store317-gBcefhIN.js",
            "assets/index-BZpYJZ-P.css",
            "assets/index-CsUDhMuy.js",
            "assets/vite-BF8QNONU.svg",
            "assets/hero-CLDdwZDr.png",
            "assets/index-CAoPt-vL.js",
            "rolldown-runtime-QTnfLwEv.js",
            "codeMirrorModule--QdMvsKi.css",
            "codicon-DCmgc-ay.ttf",
            // SvelteKit / Astro: a dot before the hash
            "_app/immutable/entry/index.BY2vkw8A.js",
            "_astro/index.B_TqY17P.css",
            "uiMode.DuLwZHRf.js",
            // esbuild upper-case base32
            "chunk-2ASZ4ACP.js",
            "main-7AF74S6M.js",
            "chunk-JXVBUHFI.js",
            "chunk-UPRVSRWQ.js",
            // hexadecimal: webpack, Parcel, Next.js, Gatsby, Hugo, mdBook
            "js/app-1a2b3c4d.js",
            "main.8608ea7d.min.css",
            "app.3b5d2c9a1f0e4d6b7a8c.js",
            "index.7d6c2f1e.js",
            "_next/static/chunks/main-3b1e2f4a5c6d7e8f.js",
            "searchindex-cc7adad5.js",
            "favicon-32x32-eab170b8.png",
            "css/main.min.2f8e1a0c9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f.css",
        ] {
            assert!(has_fingerprint(yes), "{yes}");
        }
    }

    /// Ordinary names, many from real trees (the Rust documentation, fonts, icons): none
    /// may be taken for a hash — a wrong `immutable` is a year of stale caches.
    #[test]
    fn words_are_not_fingerprinted() {
        for no in [
            "index.html",
            "index-overview.html",
            "chapter-one.js",
            "js/settings.js",
            "app-settings.js",
            "MyWidget.js",
            "my-MyWidget.js",
            "components/nav-NavBar12.js",
            "fonts/Inter-SemiBold.woff2",
            "fonts/Roboto-Regular.ttf",
            "favicon.ico",
            "about-us-page.html",
            "fonts/deadbeef.woff2",
            "2024-11-22.html",
            "photos/gallery-IMG_1234.jpg",
            "photos/trip-DSC_0042.jpg",
            "charsets/HP-TURKISH8.js",
            "charsets/EUC-JISX0213.js",
            "i18n/strings-en-US-v2.json",
            "std/collections/struct.BTreeMap.html",
            "implementors/std/os/unix/ffi/trait.OsStrExt.js",
            "implementors/std/os/unix/io/trait.StdioExt.js",
            "implementors/core/fmt/trait.LowerExp.js",
            "core/sync/atomic/struct.AtomicU8.js",
            "std/net/struct.Ipv4Addr.js",
            "core/arch/x86/fn.vmla_u16.js",
            "core/f64/constant.INFINITY.js",
            "lib/charset-CYRILLIC.js",
            "maven/cdi-spec-1.2-SNAPSHOT.js",
            "docs/cookie-HttpOnly.js",
            "docs/links-FreeURLs.js",
            "py/api-PyObject.js",
            "widgets/x-Carousel.js",
            "widgets/x-Dropdown.js",
            "licenses/BSD-2-Clause.txt",
        ] {
            assert!(!has_fingerprint(no), "{no}");
        }
    }
}
