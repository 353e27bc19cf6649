//! The private bucket of mass-alert reports (`ReportsBucket` in template.yaml): the scheduler
//! writes a report once, the API hands out short-lived presigned links to it. The bucket blocks
//! public access and expires objects; nothing here makes an object public.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::{PresigningConfig, PresigningConfigError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

/// The type of every report.
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// Longer download names are cut; browsers and file systems limit them anyway.
const MAX_FILE_NAME_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ReportsError {
    #[error("S3 request failed")]
    Request(#[source] Box<aws_sdk_s3::Error>),
    #[error("a link cannot be valid for that long")]
    Validity(#[from] PresigningConfigError),
}

impl<E> From<aws_sdk_s3::error::SdkError<E>> for ReportsError
where
    aws_sdk_s3::Error: From<aws_sdk_s3::error::SdkError<E>>,
{
    fn from(err: aws_sdk_s3::error::SdkError<E>) -> Self {
        Self::Request(Box::new(err.into()))
    }
}

#[derive(Clone, Debug)]
pub struct ReportsBucket {
    client: Client,
    bucket: String,
}

impl ReportsBucket {
    pub fn new(client: Client, bucket: String) -> Self {
        Self { client, bucket }
    }

    /// The S3 client, for callers building their own services from it.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stores a CSV report at `key`; a browser following a link saves it as `file_name`.
    pub async fn put_csv(&self, key: &str, body: Vec<u8>, file_name: &str) -> Result<(), ReportsError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(CSV_CONTENT_TYPE)
            .content_disposition(format!("attachment; filename=\"{}\"", safe_file_name(file_name)))
            // The bucket's default encryption is SSE-S3 (AES256); asking for the same keeps
            // the object encrypted even where a bucket lacks the default (the local stack).
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await?;
        Ok(())
    }

    /// A presigned GET link to `key`, valid for `valid_for` from now. Signed anew on every call,
    /// so each link lives its full time from when it was asked for; none is stored.
    pub async fn link(&self, key: &str, valid_for: Duration) -> Result<String, ReportsError> {
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(PresigningConfig::expires_in(valid_for)?)
            .await?;
        Ok(presigned.uri().to_owned())
    }
}

/// The name as it may stand inside the quoted `filename=` parameter: a quote, backslash,
/// control character or line break would end the header value or the parameter early, and
/// non-ASCII would need RFC 5987 encoding, so only letters, digits, space, `.`, `-` and `_`
/// are kept; anything else becomes `_`.
fn safe_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(MAX_FILE_NAME_CHARS)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_') { c } else { '_' })
        .collect();
    let safe = safe.trim_matches(|c| c == ' ' || c == '.');
    if safe.is_empty() { "report.csv".to_owned() } else { safe.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_break_out_of_the_header() {
        assert_eq!(safe_file_name("mass-alert 2026-11-24.csv"), "mass-alert 2026-11-24.csv");
        assert_eq!(safe_file_name("a\"; filename=evil.exe\r\nX: y.csv"), "a__ filename_evil.exe__X_ y.csv");
        assert_eq!(safe_file_name("..\\..\\Zoë.csv"), "_.._Zo_.csv", "no leading dot");
        assert_eq!(safe_file_name(""), "report.csv");
        assert_eq!(safe_file_name(" . "), "report.csv");
        assert_eq!(safe_file_name(&"x".repeat(500)).len(), MAX_FILE_NAME_CHARS);
    }
}
