//! `delta+s3://BUCKET/PREFIX`: the Delta tables in an S3-compatible bucket,
//! through `object_store`'s S3 client (already built for deltalake's
//! kernel), registered here for the `s3` scheme instead of enabling
//! deltalake's `s3` feature, whose `deltalake-aws` brings the AWS SDK
//! (DynamoDB, STS) for a locking log store this destination does not use.
//!
//! Commits go through deltalake's default log store, which writes a log
//! entry with a create-only put; the store sends it as `If-None-Match: *`
//! (conditional put), so a version that exists is never overwritten: no
//! rename, no lock table and no `AWS_S3_ALLOW_UNSAFE_RENAME` needed.

use deltalake::logstore::object_store::aws::{
    AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut,
};
use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::{
    default_logstore, logstore_factories, object_store_factories, LogStore, LogStoreFactory,
    ObjectStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake::DeltaResult;
use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Once};
use url::Url;

/// The URL prefix of this warehouse.
pub(crate) const SCHEME: &str = "delta+s3://";

/// The environment variables whose values must never appear in an error
/// or a log line (an S3 error body may echo the access key id).
const SECRET_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Makes deltalake open `s3://` table locations (once per process).
pub(crate) fn register_scheme() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let scheme = Url::parse("s3://").expect("a valid URL");
        object_store_factories().insert(scheme.clone(), Arc::new(S3Stores));
        logstore_factories().insert(scheme, Arc::new(S3LogStores));
    });
}

/// Builds the bucket's store: credentials and region from the standard
/// AWS environment variables (`AmazonS3Builder::from_env`), then the
/// destination's options (endpoint, plain HTTP), then conditional put.
struct S3Stores;

impl ObjectStoreFactory for S3Stores {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
        for (key, value) in config.raw() {
            if let Ok(key) = AmazonS3ConfigKey::from_str(key) {
                builder = builder.with_config(key, value);
            }
        }
        // Set last, so an environment variable cannot turn it off: a
        // commit must fail rather than replace a log entry.
        let store = builder
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()?;
        Ok((Arc::new(store), Path::parse(url.path())?))
    }
}

/// deltalake's default log store (create-only puts of log entries).
struct S3LogStores;

impl LogStoreFactory for S3LogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// A `delta+s3://` destination's lake: its root and the options every
/// table location is opened with.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// `s3://BUCKET/PREFIX/`.
    pub(crate) root: Url,
    /// `object_store` S3 options (no credentials: those stay in the
    /// environment).
    pub(crate) options: HashMap<String, String>,
}

impl Bucket {
    /// `BUCKET[/PREFIX]` with the `endpoint=` option, if given.
    pub(crate) fn new(path: &str, endpoint: Option<&str>) -> Result<Bucket, String> {
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let prefix = prefix.trim_matches('/');
        if bucket.is_empty() {
            return Err(
                "`delta+s3://` needs a bucket, e.g. delta+s3://bucket/prefix?work_dir=/var/lib/profiles-sync"
                    .into(),
            );
        }
        let mut root = Url::parse(&format!("s3://{bucket}/"))
            .map_err(|e| format!("bucket name {bucket:?}: {e}"))?;
        if !prefix.is_empty() {
            root.path_segments_mut()
                .expect("an s3 URL has a path")
                .pop_if_empty()
                .extend(prefix.split('/'))
                .push("");
        }
        let mut options = HashMap::new();
        if let Some(endpoint) = endpoint {
            // The value is not repeated in errors: it might carry a password.
            let parsed =
                Url::parse(endpoint).map_err(|e| format!("endpoint= is not a URL: {e}"))?;
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(
                    "endpoint= must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .into(),
                );
            }
            match parsed.scheme() {
                "https" => {}
                // Writing an http:// endpoint is the explicit choice of
                // plain HTTP (a local or in-cluster S3 server); without it
                // object_store refuses http.
                "http" => {
                    options.insert("aws_allow_http".into(), "true".into());
                }
                other => {
                    return Err(format!(
                        "endpoint= must be an http:// or https:// URL, not {other}://"
                    ))
                }
            }
            options.insert("aws_endpoint".into(), endpoint.trim_end_matches('/').into());
        }
        Ok(Bucket { root, options })
    }

    /// `s3://BUCKET/PREFIX/<schema>/<table>/`.
    pub(crate) fn table_url(&self, schema: &str, table: &str) -> Url {
        let mut url = self.root.clone();
        url.path_segments_mut()
            .expect("an s3 URL has a path")
            .pop_if_empty()
            .push(schema)
            .push(table)
            .push("");
        url
    }
}

/// `message` with the values of the AWS credential variables replaced.
pub(crate) fn scrub(message: String) -> String {
    let secrets: Vec<String> = SECRET_VARS
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .collect();
    replace_secrets(message, &secrets)
}

fn replace_secrets(mut message: String, secrets: &[String]) -> String {
    for secret in secrets {
        // A value this short would match ordinary text; real keys are far
        // longer.
        if secret.len() >= 8 {
            message = message.replace(secret.as_str(), "***");
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_prefix_become_the_table_locations() {
        let b = Bucket::new("lake/a/b/", Some("http://127.0.0.1:9000/")).unwrap();
        assert_eq!(b.root.as_str(), "s3://lake/a/b/");
        assert_eq!(
            b.table_url("case_study", "pages").as_str(),
            "s3://lake/a/b/case_study/pages/"
        );
        assert_eq!(b.options["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(b.options["aws_allow_http"], "true");

        let b = Bucket::new("lake", Some("https://s3.example.com")).unwrap();
        assert_eq!(b.table_url("s", "t").as_str(), "s3://lake/s/t/");
        assert!(!b.options.contains_key("aws_allow_http"));
        assert!(Bucket::new("lake", None).unwrap().options.is_empty());
    }

    #[test]
    fn errors_lose_the_credentials() {
        let body = "<Error><Code>InvalidAccessKeyId</Code>\
                    <AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId></Error>";
        let secrets = ["AKIAIOSFODNN7EXAMPLE".to_owned(), "abc".to_owned()];
        assert_eq!(
            replace_secrets(body.to_owned(), &secrets),
            "<Error><Code>InvalidAccessKeyId</Code><AWSAccessKeyId>***</AWSAccessKeyId></Error>"
        );
    }

    #[test]
    fn bad_buckets_and_endpoints_are_refused() {
        assert!(Bucket::new("", None).is_err());
        assert!(Bucket::new("/p", None).is_err());
        assert!(Bucket::new("b", Some("ftp://h")).is_err());
        assert!(Bucket::new("b", Some("not a url")).is_err());
        for url in [
            "http://AKIAEXAMPLE:hunter22@h",
            "ftp://AKIAEXAMPLE:hunter22@h",
        ] {
            let e = Bucket::new("b", Some(url)).unwrap_err();
            assert!(!e.contains("hunter22") && !e.contains("AKIAEXAMPLE"), "{e}");
        }
    }
}
