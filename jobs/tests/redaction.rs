//! No password reaches anything that may be shown: the redacted job, `Debug` output, warnings or
//! error messages, whatever the job's shape and wherever the secret was written.

use jobs::{parse_job, JobError, Password};
use proptest::prelude::*;

/// A password that cannot occur by chance in the rest of the job's text.
fn password() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#&()*+,./:;<=>?@^_|~ -]{4,20}".prop_map(|p| format!("Pw{p}Qz"))
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Dtle2x,
    Later,
    NomadJson,
    Hcl,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Dtle2x),
        Just(Shape::Later),
        Just(Shape::NomadJson),
        Just(Shape::Hcl)
    ]
}

/// Quotes text for JSON and HCL alike (the generated passwords hold no `$` or `%`).
fn q(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

struct Secrets {
    src: String,
    dest: String,
    /// Under a misspelt key in the Src config: an unknown field.
    misspelt: String,
    /// Deep inside an unknown object.
    nested: String,
}

fn job_text(shape: Shape, s: &Secrets, port: &str) -> String {
    let src_conn = format!(
        r#"{{"Host": "src.example", "Port": {port}, "User": "repl", "Password": {}}}"#,
        q(&s.src)
    );
    let dest_conn = format!(
        r#"{{"Host": "dst.example", "Port": 3306, "User": "app", "Password": {}}}"#,
        q(&s.dest)
    );
    let extra = format!(
        r#""Pasword": {}, "Extra": {{"Kafka": [{{"SaslPassword": {}}}]}}"#,
        q(&s.misspelt),
        q(&s.nested)
    );
    match shape {
        Shape::Dtle2x => format!(
            r#"{{"Name": "j1", "Tasks": [
                {{"Type": "Src", "Config": {{"ConnectionConfig": {src_conn}, {extra}}}}},
                {{"Type": "Dest", "Config": {{"ConnectionConfig": {dest_conn}}}}}]}}"#
        ),
        Shape::Later => format!(
            r#"{{"Name": "j1", "Tasks": [
                {{"Type": "Src", "Config": {{"SrcConnectionConfig": {src_conn},
                  "DestConnectionConfig": {dest_conn}, {extra}}}}},
                {{"Type": "Dest", "Config": {{"DestType": "mysql"}}}}]}}"#
        ),
        Shape::NomadJson => format!(
            r#"{{"Job": {{"ID": "j1", "TaskGroups": [
                {{"Name": "src", "Tasks": [{{"Name": "src", "Driver": "dtle",
                  "Env": {{"DB_PASSWORD": {}}},
                  "Config": {{"SrcConnectionConfig": {src_conn}, "DestConnectionConfig": {dest_conn}, {extra}}}}}]}},
                {{"Name": "dest", "Tasks": [{{"Name": "dest", "Driver": "dtle", "Config": {{"DestType": "mysql"}}}}]}}]}}}}"#,
            q(&s.nested)
        ),
        Shape::Hcl => format!(
            r#"job "j1" {{
  group "src" {{
    task "src" {{
      driver = "dtle"
      env {{
        DB_PASSWORD = {}
      }}
      config {{
        ConnectionConfig = {{
          Host = "src.example"
          Port = {port}
          User = "repl"
          Password = {}
        }}
        Pasword = {}
        Extra = {{ Kafka = [{{ SaslPassword = {} }}] }}
      }}
    }}
  }}
  group "dest" {{
    task "dest" {{
      driver = "dtle"
      config {{
        ConnectionConfig {{
          Host = "dst.example"
          Port = 3306
          User = "app"
          Password = {}
        }}
      }}
    }}
  }}
}}"#,
            q(&s.nested),
            q(&s.src),
            q(&s.misspelt),
            q(&s.nested),
            q(&s.dest)
        ),
    }
}

fn assert_no_secret(shown: &str, secrets: &Secrets) -> Result<(), TestCaseError> {
    for secret in [
        &secrets.src,
        &secrets.dest,
        &secrets.misspelt,
        &secrets.nested,
    ] {
        prop_assert!(
            !shown.contains(secret.as_str()),
            "{secret:?} leaked into: {shown}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn redaction_never_leaks_a_password(
        shape in shape(),
        src in password(),
        dest in password(),
        misspelt in password(),
        nested in password(),
        bad_port in any::<bool>(),
    ) {
        let secrets = Secrets { src, dest, misspelt, nested };
        let text = job_text(shape, &secrets, if bad_port { "\"abc\"" } else { "3307" });
        match parse_job(&text) {
            Ok(job) => {
                prop_assert!(!bad_port);
                // Parsing keeps the real passwords for the one place that needs them.
                prop_assert_eq!(job.spec.src.connection.password.expose(), secrets.src.as_str());
                prop_assert_eq!(job.spec.dest.connection.password.expose(), secrets.dest.as_str());
                // The secrets were kept, not dropped ...
                let kept = serde_json::to_string(&job.spec.unrecognised).unwrap();
                prop_assert!(kept.contains(&q(&secrets.misspelt)[1..]));
                // ... and nothing that is shown contains them.
                let redacted = job.spec.redacted();
                prop_assert_eq!(redacted.src.connection.password.expose(), Password::MASK);
                prop_assert_eq!(redacted.dest.connection.password.expose(), Password::MASK);
                assert_no_secret(&serde_json::to_string(&redacted).unwrap(), &secrets)?;
                assert_no_secret(&format!("{redacted:?}"), &secrets)?;
                assert_no_secret(&format!("{:?}", job.spec.src.connection), &secrets)?;
                for warning in &job.warnings {
                    assert_no_secret(&warning.to_string(), &secrets)?;
                }
            }
            Err(err) => {
                prop_assert!(bad_port, "{}", err);
                let invalid = matches!(err, JobError::Invalid { .. });
                prop_assert!(invalid);
                assert_no_secret(&err.to_string(), &secrets)?;
                assert_no_secret(&format!("{err:?}"), &secrets)?;
            }
        }
    }
}
