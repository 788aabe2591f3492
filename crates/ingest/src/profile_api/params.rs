//! The routes' query parameters, checked: a bad one is a 400 that names it.

use super::lookup::{EventsQuery, ExternalIdsQuery, TraitsQuery};
use percent_encoding::percent_decode_str;
use ps_spec::time::parse_timestamp;
use ps_warehouse::sql::profile::EventQuery;

/// A parameter the route cannot take: the message of a 400
/// `validation_error`.
pub(crate) type Invalid = String;

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as in forms).
pub(crate) fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

struct Params(Vec<(String, String)>);

impl Params {
    /// The last value given for `key`.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A comma list (repeated keys add to it).
    fn list(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn limit(&self, default: usize, max: usize) -> Result<usize, Invalid> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "The parameter `limit` must be an integer between 1 and {max}, not {v:?}"
                )),
            },
        }
    }

    fn flag(&self, key: &str) -> Result<bool, Invalid> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(v) => Err(format!(
                "The parameter `{key}` must be true or false, not {v:?}"
            )),
        }
    }

    fn next(&self) -> Option<String> {
        self.get("next")
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    }

    fn date(&self, key: &str) -> Result<Option<i64>, Invalid> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_timestamp(v).map(Some).ok_or_else(|| {
                format!("The parameter `{key}` must be an ISO-8601 date (2024-01-31T12:00:00Z), not {v:?}")
            }),
        }
    }
}

/// `/traits`: `include`, `class`, `limit` (1–200, default 10), `verbose`, `next`.
pub(crate) fn traits(query: Option<&str>) -> Result<TraitsQuery, Invalid> {
    let p = Params(pairs(query));
    let class = match p.get("class") {
        None | Some("") => None,
        Some(c @ ("audience" | "computed_trait")) => Some(c.to_owned()),
        Some(c) => {
            return Err(format!(
                "The parameter `class` must be audience or computed_trait, not {c:?}"
            ))
        }
    };
    Ok(TraitsQuery {
        include: p.list("include"),
        class,
        class_keys: Vec::new(),
        limit: p.limit(10, 200)?,
        verbose: p.flag("verbose")?,
        next: p.next(),
    })
}

/// `/external_ids`: `include` (types), `limit` (1–100, default 10),
/// `verbose` (accepted; every answer is complete), `next`.
pub(crate) fn external_ids(query: Option<&str>) -> Result<ExternalIdsQuery, Invalid> {
    let p = Params(pairs(query));
    p.flag("verbose")?;
    Ok(ExternalIdsQuery {
        include: p.list("include"),
        limit: p.limit(10, 100)?,
        next: p.next(),
    })
}

/// `/events`: `start`, `end`, `include`, `exclude`, `sort` (`desc`
/// default), `limit` (1–100, default 10), `next`.
pub(crate) fn events(query: Option<&str>) -> Result<EventsQuery, Invalid> {
    let p = Params(pairs(query));
    let ascending = match p.get("sort") {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(s) => {
            return Err(format!(
                "The parameter `sort` must be asc or desc, not {s:?}"
            ))
        }
    };
    let (start, end) = (p.date("start")?, p.date("end")?);
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err("The parameter `start` must not be after `end`".into());
        }
    }
    p.flag("verbose")?;
    Ok(EventsQuery {
        filter: EventQuery {
            start,
            end,
            include: p.list("include"),
            exclude: p.list("exclude"),
            ascending,
            ..EventQuery::default()
        },
        limit: p.limit(10, 100)?,
        next: p.next(),
    })
}

/// `/metadata`: `verbose` only.
pub(crate) fn metadata(query: Option<&str>) -> Result<(), Invalid> {
    Params(pairs(query)).flag("verbose").map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_dates_and_lists() {
        assert_eq!(traits(None).unwrap().limit, 10);
        assert_eq!(traits(Some("limit=200")).unwrap().limit, 200);
        assert!(traits(Some("limit=201"))
            .unwrap_err()
            .contains("between 1 and 200"));
        assert!(external_ids(Some("limit=101")).is_err());
        assert!(events(Some("limit=0")).is_err());
        assert!(events(Some("start=yesterday"))
            .unwrap_err()
            .contains("start"));
        assert!(events(Some("sort=up")).is_err());
        let e = events(Some(
            "include=Order+Completed,Signed%20Up&sort=asc&start=2022-01-01T00:00:00Z",
        ))
        .unwrap();
        assert_eq!(e.filter.include, ["Order Completed", "Signed Up"]);
        assert!(e.filter.ascending && e.filter.start.is_some());
        assert!(traits(Some("class=segment")).is_err());
        assert!(traits(Some("verbose=maybe")).is_err());
    }
}
