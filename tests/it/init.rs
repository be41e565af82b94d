//! `init` reads the project before the first build (issue 9, item 11): it names the
//! framework it saw, picks that framework's build directory, and writes header rules
//! that fit it.

use crate::util::Run;

fn init_in(files: &[(&str, &str)]) -> (tempfile::TempDir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = tmp.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let out = Run::new(tmp.path(), &["init"]).expect(0);
    let config = std::fs::read_to_string(tmp.path().join("driftless.toml")).unwrap();
    (tmp, out.all(), config)
}

#[test]
fn init_reads_the_framework_before_the_first_build() {
    // (project files, framework named, build directory, a rule it writes)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[("package.json", r#"{"devDependencies":{"vite":"^7.0.0"}}"#)],
            "Vite",
            "dist",
            "assets/**",
        ),
        (
            &[(
                "package.json",
                r#"{"dependencies":{"next":"15.0.0"},"scripts":{"build":"next build"}}"#,
            )],
            "Next.js",
            "out",
            "_next/static/**",
        ),
        (
            &[("package.json", r#"{"dependencies":{"astro":"5.0.0"}}"#)],
            "Astro",
            "dist",
            "_astro/**",
        ),
        (
            &[(
                "package.json",
                r#"{"dependencies":{"@docusaurus/core":"3.10.2"}}"#,
            )],
            "Docusaurus",
            "build",
            "assets/**",
        ),
        (
            &[("package.json", r#"{"dependencies":{"gatsby":"5.0.0"}}"#)],
            "Gatsby",
            "public",
            "**",
        ),
        (
            &[(
                "package.json",
                r#"{"devDependencies":{"@sveltejs/kit":"2","@sveltejs/adapter-static":"3"}}"#,
            )],
            "SvelteKit",
            "build",
            "_app/immutable/**",
        ),
        (&[("hugo.toml", "title = 'x'\n")], "Hugo", "public", "**"),
        (
            &[("config.toml", "baseURL = 'https://x/'\n")],
            "Hugo",
            "public",
            "**",
        ),
        (&[("_config.yml", "title: x\n")], "Jekyll", "_site", "**"),
        (
            &[("book.toml", "[book]\ntitle = 'x'\n")],
            "mdBook",
            "book",
            "**",
        ),
        (&[("mkdocs.yml", "site_name: x\n")], "MkDocs", "site", "**"),
        (
            &[("docs/conf.py", "project = 'x'\n")],
            "Sphinx",
            "docs/_build/html",
            "**",
        ),
        (
            &[("conf.py", "project = 'x'\n")],
            "Sphinx",
            "_build/html",
            "**",
        ),
        (
            &[(".eleventy.js", "module.exports = {}\n")],
            "Eleventy",
            "_site",
            "**",
        ),
    ];
    for (files, framework, site, rule) in cases {
        let (_tmp, out, config) = init_in(files);
        assert!(out.contains(framework), "{framework}: not named:\n{out}");
        assert!(
            config.contains(&format!("site = \"{site}\"")),
            "{framework}: site:\n{config}"
        );
        assert!(
            config.contains(rule),
            "{framework}: no rule {rule}:\n{config}"
        );
        // Not built yet: said, not silently accepted.
        assert!(
            out.contains("index.html"),
            "{framework}: no warning:\n{out}"
        );
        // Fingerprinted names anywhere are immutable, HTML is revalidated, and the
        // generated file has an [edge] section and a url to fill in.
        for want in ["immutable", "no-cache", "# [edge]", "# url = "] {
            assert!(
                config.contains(want),
                "{framework}: missing {want}:\n{config}"
            );
        }
        // What init writes is a valid config.
        let dir = _tmp.path();
        std::fs::create_dir_all(dir.join(site)).unwrap();
        std::fs::write(dir.join(site).join("index.html"), "x").unwrap();
        std::fs::write(dir.join(site).join("app-1a2b3c4d.js"), "x").unwrap();
        let plan = Run::new(dir, &["plan", "local", "--json"]).expect(0).json();
        let js = plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == "app-1a2b3c4d.js")
            .unwrap();
        assert!(
            js["local"]["cache_control"]
                .as_str()
                .unwrap_or_default()
                .contains("immutable"),
            "{framework}: hashed name not immutable: {js}"
        );
    }
}

#[test]
fn init_with_a_built_site_does_not_warn() {
    let (_tmp, out, config) = init_in(&[
        ("package.json", r#"{"devDependencies":{"vite":"7"}}"#),
        ("dist/index.html", "<h1>built</h1>"),
    ]);
    assert!(config.contains("site = \"dist\""), "{config}");
    assert!(!out.contains("warning"), "{out}");
}

/// Regression (issue 20.12): in a folder that is already a built site (index.html at
/// the top, no framework files) init wrote site = "dist" and warned that
/// dist/index.html was missing. It picks "." — and the local store under .driftless/,
/// which a deploy never publishes — and the first deploy works and publishes neither
/// driftless.toml nor its schema.
#[test]
fn init_in_a_built_site_deploys_that_folder() {
    let (tmp, out, config) =
        init_in(&[("index.html", "<h1>built</h1>"), ("css/site.css", "body{}")]);
    assert!(config.contains("site = \".\""), "{config}");
    assert!(!out.contains("warning"), "{out}");
    let done = Run::new(tmp.path(), &["--json", "deploy", "local", "--yes"]).expect(0);
    let store = tmp.path().join(".driftless/local");
    let served = crate::util::site_files(&store);
    assert_eq!(
        served.keys().cloned().collect::<Vec<_>>(),
        ["css/site.css", "index.html"],
        "{}",
        done.stdout
    );

    // The site in one subfolder (a downloaded build): that folder.
    let (_tmp, out, config) = init_in(&[("www/index.html", "<h1>built</h1>")]);
    assert!(config.contains("site = \"www\""), "{config}");
    assert!(!out.contains("warning"), "{out}");
}

/// Regression (issue 34, smaller): on `sphinx-quickstart --sep` (sources in source/,
/// the build in build/html) init picked build/html but hinted `sphinx-build -M html .
/// _build`, which builds elsewhere; each layout now gets the command that builds where
/// the site is looked for.
#[test]
fn each_sphinx_layout_gets_the_build_command_for_its_site() {
    for (conf, site, build) in [
        (
            "source/conf.py",
            "build/html",
            "sphinx-build -M html source build",
        ),
        ("conf.py", "_build/html", "sphinx-build -M html . _build"),
        (
            "docs/conf.py",
            "docs/_build/html",
            "sphinx-build -M html docs docs/_build",
        ),
    ] {
        let (_tmp, out, config) = init_in(&[(conf, "project = 'x'\n")]);
        assert!(
            config.contains(&format!("site = \"{site}\"")),
            "{conf}: {config}"
        );
        assert!(out.contains(build), "{conf}: {out}");
    }
}
