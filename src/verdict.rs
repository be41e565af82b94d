//! A check's verdict — pass, warn or fail, what was seen and how to fix it — as `doctor`
//! audits and prints them. A leaf: the audits of every room return these.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub level: Level,
    pub seen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

pub fn pass(id: &'static str, seen: impl Into<String>) -> Check {
    Check {
        id,
        level: Level::Pass,
        seen: seen.into(),
        fix: None,
    }
}

pub fn warn(id: &'static str, seen: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id,
        level: Level::Warn,
        seen: seen.into(),
        fix: Some(fix.into()),
    }
}

pub fn fail(id: &'static str, seen: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id,
        level: Level::Fail,
        seen: seen.into(),
        fix: Some(fix.into()),
    }
}
