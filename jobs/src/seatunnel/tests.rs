//! The SeaTunnel translation: configs that replicate, and refusals that name what is wrong.
use super::options::jdbc_server;
use super::*;
use crate::StartPosition;

fn streaming_job() -> Value {
    json!({
        "env": {"job.mode": "STREAMING", "job.name": "orders_cdc"},
        "source": [{
            "plugin_name": "MySQL-CDC",
            "base-url": "jdbc:mysql://10.0.0.5:3307/shop?useSSL=false",
            "username": "repl",
            "password": "src-secret",
            "table-names": ["shop.orders", "shop.order_lines"],
            "server-id": "5400-5408",
        }],
        "transform": [],
        "sink": [{
            "plugin_name": "Jdbc",
            "url": "jdbc:mariadb://10.0.0.6:3308/shop",
            "driver": "org.mariadb.jdbc.Driver",
            "user": "apply",
            "password": "dst-secret",
            "generate_sink_sql": true,
            "database": "${database_name}",
            "table": "${table_name}",
        }],
    })
}

#[test]
fn a_streaming_mysql_cdc_to_jdbc_job_is_a_dtle_job() {
    let params = SubmitParams {
        job_id: Some("733584788375666689".into()),
        job_name: None,
    };
    let parsed = from_seatunnel_value(&streaming_job(), &params).expect("a dtle job");
    let spec = &parsed.spec;
    assert_eq!(spec.id, "733584788375666689");
    assert_eq!(spec.name, "orders_cdc");
    assert_eq!(
        (spec.src.connection.host.as_str(), spec.src.connection.port),
        ("10.0.0.5", 3307)
    );
    assert_eq!(
        (
            spec.dest.connection.host.as_str(),
            spec.dest.connection.port
        ),
        ("10.0.0.6", 3308)
    );
    assert_eq!(spec.src.connection.user, "repl");
    assert!(!spec.src.extract.skip_incremental_copy);
    let rendered = format!("{:?}", spec.src.extract.replicate_do_db);
    assert!(
        rendered.contains("orders") && rendered.contains("order_lines"),
        "{rendered}"
    );
    let warned: Vec<&str> = parsed.warnings.iter().map(|w| w.path.as_str()).collect();
    assert!(warned.contains(&"source.MySQL-CDC.server-id"), "{warned:?}");
    assert!(
        warned.contains(&"sink.Jdbc.generate_sink_sql"),
        "{warned:?}"
    );
}

#[test]
fn hocon_reads_like_json() {
    let text = r#"
        env { job.mode = "STREAMING" }
        source {
          MySQL-CDC {
            base-url = "jdbc:mysql://127.0.0.1:3307"
            username = "repl"
            password = "p"
            database-names = ["shop"]
            startup.mode = "specific"
            startup.specific-offset.file = "mysql-bin.000003"
            startup.specific-offset.pos = 4
            snapshot.split.size = 500
          }
        }
        sink {
          Jdbc {
            url = "jdbc:mysql://127.0.0.1:3308"
            user = "apply"
            password = "q"
            database = "shop_copy"
          }
        }
    "#;
    let parsed =
        parse_seatunnel(text, ConfigFormat::Hocon, &SubmitParams::default()).expect("a dtle job");
    let spec = &parsed.spec;
    assert_eq!(spec.name, "SeaTunnel_Job");
    assert_eq!(spec.src.extract.chunk_size, 500);
    assert_eq!(
        spec.src.extract.start,
        StartPosition::BinlogFile {
            file: "mysql-bin.000003".into(),
            pos: 4
        }
    );
    let rendered = format!("{:?}", spec.src.extract.replicate_do_db);
    assert!(rendered.contains("shop_copy"), "renamed: {rendered}");
}

#[test]
fn batch_is_snapshot_only_and_latest_starts_now() {
    let mut job = streaming_job();
    job["env"]["job.mode"] = json!("batch");
    let parsed = from_seatunnel_value(&job, &SubmitParams::default()).expect("batch");
    assert!(parsed.spec.src.extract.skip_incremental_copy);

    let mut job = streaming_job();
    job["source"][0]["startup.mode"] = json!("latest");
    let parsed = from_seatunnel_value(&job, &SubmitParams::default()).expect("latest");
    assert_eq!(parsed.spec.src.extract.start, StartPosition::Current);
}

#[test]
fn other_connectors_and_options_are_refused_by_name() {
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|j| j["source"][0]["plugin_name"] = json!("FakeSource")),
            "FakeSource",
        ),
        (
            Box::new(|j| j["sink"][0]["plugin_name"] = json!("Console")),
            "Console",
        ),
        (
            Box::new(|j| j["sink"][0]["url"] = json!("jdbc:postgresql://h:5432/db")),
            "jdbc:postgresql",
        ),
        (
            Box::new(|j| j["transform"] = json!([{"plugin_name": "Sql"}])),
            "transforms",
        ),
        (
            Box::new(|j| j["source"][0]["startup.mode"] = json!("timestamp")),
            "timestamp",
        ),
        (
            Box::new(|j| j["sink"][0]["query"] = json!("insert into t values(?)")),
            "query",
        ),
        (
            Box::new(|j| j["sink"][0]["table"] = json!("one_table")),
            "several",
        ),
        (Box::new(|j| j["env"]["job.mode"] = json!("micro")), "micro"),
    ];
    for (change, word) in cases {
        let mut job = streaming_job();
        change(&mut job);
        let err = from_seatunnel_value(&job, &SubmitParams::default())
            .expect_err(word)
            .to_string();
        assert!(err.contains(word), "{word}: {err}");
    }
    let err =
        parse_seatunnel("{", ConfigFormat::Json, &SubmitParams::default()).expect_err("not JSON");
    assert!(matches!(err, SeaTunnelError::Syntax { format: "JSON", .. }));
    assert!(ConfigFormat::from_param(Some("sql")).is_err());
}

#[test]
fn jdbc_urls_give_host_port_and_database() {
    assert_eq!(
        jdbc_server("jdbc:mysql://db.example:3310/shop?x=1", "u").unwrap(),
        ("db.example".into(), 3310, Some("shop".into()))
    );
    assert_eq!(
        jdbc_server("JDBC:MARIADB://[::1]:3311", "u").unwrap(),
        ("::1".into(), 3311, None)
    );
    assert_eq!(
        jdbc_server("jdbc:mysql://h", "u").unwrap(),
        ("h".into(), 3306, None)
    );
    assert!(jdbc_server("jdbc:mysql://a:1,b:2/db", "u").is_err());
    assert!(jdbc_server("jdbc:mysql://h:port/db", "u").is_err());
}
