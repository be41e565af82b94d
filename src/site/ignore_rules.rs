//! What a deploy never publishes: version control, secrets and credentials, OS junk (each
//! exclusion is reported), and driftless's own files.

/// Excluded from every scan (on top of the config's `ignore` and `.driftlessignore`),
/// with gitignore semantics: version control, secrets and credentials a build directory
/// should never publish, and OS junk. Each exclusion is reported in the plan; the
/// config's `include` globs bring back a file these would keep back.
pub const DEFAULT_IGNORES: &[&str] = &[
    // version control
    ".git/",
    ".hg/",
    ".svn/",
    // environment and package-manager credentials
    ".env",
    ".env.*",
    ".npmrc",
    ".pypirc",
    ".yarnrc.yml",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".pgpass",
    ".my.cnf",
    ".htpasswd",
    // cloud and cluster credentials
    ".aws/",
    ".azure/",
    ".gcloud/",
    ".kube/",
    ".docker/",
    ".ssh/",
    ".gnupg/",
    "credentials.json",
    "client_secret*.json",
    // keys and certificates
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    // infrastructure state and database dumps
    "*.tfstate",
    "*.tfstate.*",
    ".terraform/",
    "*.sql",
    "*.sql.gz",
    "*.dump",
    // OS and editor junk
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "*.swp",
    "*~",
];

/// Driftless's own files: never deployed, and not worth reporting.
pub(super) const OWN_FILES: &[&str] = &[".driftless/", IGNORE_FILE];

pub const IGNORE_FILE: &str = ".driftlessignore";
