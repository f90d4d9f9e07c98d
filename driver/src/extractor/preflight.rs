//! Checks before reading: the source is reachable with the job's credentials and writes the binlog
//! replication needs. A wrong setting is a definite error naming the setting, what it must be and
//! what it is.

use crate::error::{classify_mysql, DefiniteCause, TaskError};
use crate::mysql::{self, Flavor};
use jobs::ConnectionConfig;
use mysql_async::prelude::Queryable;

/// Connects to the source and checks its binlog settings.
///
/// # Errors
/// Definite for wrong credentials or settings, transient for an unreachable server.
pub async fn check_source(config: &ConnectionConfig) -> Result<Flavor, TaskError> {
    let mut conn = mysql::connect(config, "source").await?;
    let (flavor, version) = mysql::flavor(&mut conn).await?;
    let mut required = vec![
        ("log_bin", "1"),
        ("binlog_format", "ROW"),
        ("binlog_row_image", "FULL"),
    ];
    if flavor == Flavor::MariaDb {
        required.push(("binlog_row_metadata", "FULL"));
    }
    for (setting, expected) in required {
        let actual: Option<String> = conn
            .query_first(format!("SELECT @@GLOBAL.{setting}"))
            .await
            .map_err(|e| classify_mysql(format!("reading {setting}"), &e))?;
        let actual = actual.unwrap_or_default();
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(TaskError::definite(
                format!("checking the source ({version})"),
                DefiniteCause::InvalidSystemSetting {
                    setting: setting.to_owned(),
                    expected: expected.to_owned(),
                    actual,
                },
            ));
        }
    }
    conn.disconnect().await.ok();
    Ok(flavor)
}
