#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion
//! The Helm chart keeps design.md §1's promise: the merchant private key and the API password are
//! mounted into the sidecar container only (read-only, mode 0400) and never reach an environment
//! variable, a ConfigMap or another container of the pod.
//!
//! Renders `helm/trustly-sidecar` with the pinned helm that `.ci/run` installs (`HELM_BIN`
//! overrides the path) and reads the pod specs through `helm/check_mounts.py`, which turns the
//! YAML into JSON with PyYAML (installed next to helm, in `.ci/.tools/py`). A missing helm fails
//! the test: the chart is part of the product.

use std::{
    ffi::{OsStr, OsString},
    fmt::Debug,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

/// Name of our container in every pod the chart renders or documents.
const SIDECAR: &str = "trustly-sidecar";
/// File the Secret volume projects the private key to (`trustly-sidecar.volumes`).
const KEY_FILE: &str = "private-key.pem";
/// File the Secret volume projects the API password to.
const PASSWORD_FILE: &str = "password";
/// Where the chart mounts the Secret in the sidecar container.
const MOUNT_PATH: &str = "/var/run/secrets/trustly-sidecar";
/// Publicly known test key (tests/fixtures/keys/README.md), handed to helm with --set-file.
const TEST_KEY: &str = "tests/fixtures/keys/merchant-test-private.pem";
/// A marker password: it must appear nowhere in the rendered manifests (the Secret holds it
/// base64-encoded).
const TEST_PASSWORD: &str = "test-only-helm-password-7c1e";
const TEST_TOKEN: &str = "test-only-helm-token-0b42";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm_bin() -> PathBuf {
    let path = std::env::var_os("HELM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".ci/.tools/helm"));
    assert!(
        path.is_file(),
        "helm not found at {}: run .ci/run (or helm/test.sh), which installs the pinned helm \
         into .ci/.tools, or point HELM_BIN at a helm v3 binary",
        path.display()
    );
    path
}

fn helm_template<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(helm_bin())
        .current_dir(repo())
        .args([
            "template",
            "r1",
            "helm/trustly-sidecar",
            "--namespace",
            "payments",
        ])
        .args(["--kube-version", "1.31.0"])
        .args(args)
        .output()
        .expect("run helm")
}

fn render<S: AsRef<OsStr> + Debug>(args: &[S]) -> String {
    let out = helm_template(args);
    assert!(
        out.status.success(),
        "helm template {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm prints UTF-8")
}

/// `helm/check_mounts.py` on the rendered text: workloads → containers → mounts/env, ConfigMaps,
/// Secret key names.
fn summarize(rendered: &str) -> Value {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), rendered).unwrap();
    let mut pythonpath = OsString::from(repo().join(".ci/.tools/py"));
    if let Some(existing) = std::env::var_os("PYTHONPATH") {
        pythonpath.push(":");
        pythonpath.push(existing);
    }
    let out = Command::new("python3")
        .current_dir(repo())
        .arg("helm/check_mounts.py")
        .arg(file.path())
        .env("PYTHONPATH", pythonpath)
        .output()
        .expect("run python3 (installed by .ci/run)");
    assert!(
        out.status.success(),
        "helm/check_mounts.py failed (run .ci/run to install PyYAML into .ci/.tools/py):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check_mounts.py prints JSON")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The one workload running our container; panics unless there is exactly one.
fn sidecar_workload(summary: &Value) -> &Value {
    let with_sidecar: Vec<&Value> = array(summary, "workloads")
        .iter()
        .filter(|w| {
            array(w, "containers")
                .iter()
                .any(|c| str_of(c, "name") == SIDECAR)
        })
        .collect();
    assert_eq!(
        with_sidecar.len(),
        1,
        "workloads running {SIDECAR}: {with_sidecar:#?}"
    );
    with_sidecar[0]
}

fn projects(volume: &Value, file: &str) -> bool {
    array(&volume["secret"], "items")
        .iter()
        .any(|i| str_of(i, "path") == file)
}

/// Asserts every invariant on the workload's pod spec and returns the Secret volume.
fn assert_key_only_in_sidecar<'a>(workload: &'a Value, rendered: &str) -> &'a Value {
    let key_volumes: Vec<&Value> = array(workload, "volumes")
        .iter()
        .filter(|v| projects(v, KEY_FILE))
        .collect();
    assert_eq!(
        key_volumes.len(),
        1,
        "one Secret volume with the key: {key_volumes:#?}"
    );
    let volume = key_volumes[0];
    let volume_name = str_of(volume, "name");
    let secret = &volume["secret"];
    assert_eq!(
        secret["defaultMode"], 0o400,
        "key files must be mode 0400: {secret}"
    );
    assert!(
        projects(volume, PASSWORD_FILE),
        "the password comes from the same volume"
    );
    let protected_keys: Vec<&str> = array(secret, "items")
        .iter()
        .filter(|i| [KEY_FILE, PASSWORD_FILE].contains(&str_of(i, "path")))
        .map(|i| str_of(i, "key"))
        .collect();

    let containers = array(workload, "containers");
    for container in containers {
        let name = str_of(container, "name");
        let mounts: Vec<&Value> = array(container, "volumeMounts")
            .iter()
            .filter(|m| str_of(m, "name") == volume_name)
            .collect();
        if name == SIDECAR {
            assert_eq!(
                mounts.len(),
                1,
                "{SIDECAR} mounts the Secret once: {mounts:#?}"
            );
            assert_eq!(
                mounts[0]["readOnly"], true,
                "read-only mount: {}",
                mounts[0]
            );
            assert_eq!(str_of(mounts[0], "mountPath"), MOUNT_PATH);
            assert!(
                mounts[0].get("subPath").is_none(),
                "no subPath: {}",
                mounts[0]
            );
        } else {
            assert!(
                mounts.is_empty(),
                "container {name} must not mount {volume_name}: {mounts:#?}"
            );
        }
        for env in array(container, "env") {
            let value = str_of(env, "value");
            assert!(
                !value.contains("PRIVATE KEY") && !value.contains(TEST_PASSWORD),
                "{name}: env {} carries a secret",
                str_of(env, "name")
            );
            let secret_ref = &env["valueFrom"]["secretKeyRef"];
            assert!(
                !protected_keys.contains(&str_of(secret_ref, "key")),
                "{name}: env {} reads the key or password from the Secret: {secret_ref}",
                str_of(env, "name")
            );
        }
        for source in array(container, "envFrom") {
            assert!(
                source.get("secretRef").is_none(),
                "{name}: envFrom a Secret: {source}"
            );
        }
    }

    let sidecar = containers
        .iter()
        .find(|c| str_of(c, "name") == SIDECAR)
        .unwrap();
    let sc = &sidecar["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{sc}");
    assert_eq!(sc["runAsUser"], 65532, "{sc}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{sc}"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{sc}");
    assert_eq!(sidecar["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(
        workload["podSecurityContext"]["fsGroup"].as_i64().is_some(),
        "without an fsGroup the non-root sidecar cannot read its 0400 files"
    );

    assert!(
        !rendered.contains(TEST_PASSWORD),
        "the password leaked into the manifests"
    );
    assert!(
        !rendered.contains(TEST_TOKEN),
        "the gRPC token leaked into the manifests"
    );
    volume
}

/// The ConfigMap points the sidecar at the mounted files and holds no secret.
fn assert_config_points_at_files(summary: &Value) -> &Value {
    let config_maps = array(summary, "configMaps");
    assert_eq!(config_maps.len(), 1, "{config_maps:#?}");
    let data = &config_maps[0]["data"];
    assert_eq!(
        data["TRUSTLY_SIDECAR_PRIVATE_KEY_PATH"],
        format!("{MOUNT_PATH}/{KEY_FILE}")
    );
    assert_eq!(
        data["TRUSTLY_SIDECAR_PASSWORD_PATH"],
        format!("{MOUNT_PATH}/{PASSWORD_FILE}")
    );
    for (name, value) in data.as_object().unwrap() {
        let value = value.as_str().unwrap();
        assert!(
            !value.contains("PRIVATE KEY"),
            "ConfigMap {name} holds key material"
        );
        assert!(
            !value.contains(TEST_PASSWORD),
            "ConfigMap {name} holds the password"
        );
    }
    data
}

/// Value-file arguments plus the chart creating the Secret from the test key and password.
fn with_created_secret(values_file: &str, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "-f".to_owned(),
        format!("helm/trustly-sidecar/ci/{values_file}"),
        "--set".to_owned(),
        "secret.existingSecret=".to_owned(),
        "--set".to_owned(),
        "secret.create=true".to_owned(),
        "--set-file".to_owned(),
        format!("secret.data.privateKey={TEST_KEY}"),
        "--set".to_owned(),
        format!("secret.data.password={TEST_PASSWORD}"),
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn sidecar_example_mounts_the_key_into_the_sidecar_container_only() {
    let rendered = render(&["-f", "helm/trustly-sidecar/ci/sidecar-example-values.yaml"]);
    let summary = summarize(&rendered);
    let workload = sidecar_workload(&summary);
    assert_eq!(str_of(workload, "kind"), "Deployment");
    let volume = assert_key_only_in_sidecar(workload, &rendered);
    assert_eq!(volume["secret"]["secretName"], "payments-trustly");

    // The app container shares the pod (and its volume list) but has no mount at all.
    let app = array(workload, "containers")
        .iter()
        .find(|c| str_of(c, "name") == "app")
        .expect("the example's app container");
    assert!(array(app, "volumeMounts").is_empty(), "{app}");
    assert_eq!(app["init"], false);

    let data = assert_config_points_at_files(&summary);
    assert_eq!(data["TRUSTLY_SIDECAR_GRPC_LISTEN"], "127.0.0.1:50051");
    assert_eq!(data["TRUSTLY_SIDECAR_OPS_LISTEN"], "0.0.0.0:9464");
}

#[test]
fn native_sidecar_with_a_created_secret_keeps_secrets_out_of_env_and_config() {
    let rendered = render(&with_created_secret("sidecar-native-values.yaml", &[]));
    let summary = summarize(&rendered);
    let workload = sidecar_workload(&summary);
    assert_key_only_in_sidecar(workload, &rendered);
    assert_config_points_at_files(&summary);

    let sidecar = array(workload, "containers")
        .iter()
        .find(|c| str_of(c, "name") == SIDECAR)
        .unwrap();
    assert_eq!(sidecar["init"], true, "native sidecars are init containers");
    assert_eq!(sidecar["restartPolicy"], "Always");

    // The Secret the chart created holds exactly the two keys; its values are only base64 there.
    let secrets = array(&summary, "secrets");
    assert_eq!(secrets.len(), 1, "{secrets:#?}");
    assert_eq!(
        secrets[0]["keys"],
        serde_json::json!(["password", KEY_FILE])
    );
    let pem = std::fs::read_to_string(repo().join(TEST_KEY)).unwrap();
    let pem_body_line = pem.lines().nth(1).unwrap();
    assert!(
        !rendered.contains(pem_body_line),
        "PEM text outside the Secret's base64"
    );
}

#[test]
fn standalone_mounts_key_password_and_token_read_only() {
    let rendered = render(&with_created_secret(
        "standalone-no-netpol-values.yaml",
        &[
            "--set".to_owned(),
            format!("secret.data.grpcToken={TEST_TOKEN}"),
            "--set".to_owned(),
            format!("secret.data.redisUrl=redis://:{TEST_PASSWORD}@redis:6379"),
        ],
    ));
    let summary = summarize(&rendered);
    let workload = sidecar_workload(&summary);
    assert_eq!(str_of(workload, "name"), "r1-trustly-sidecar");
    assert_eq!(
        array(workload, "containers").len(),
        1,
        "standalone runs the sidecar alone"
    );
    let volume = assert_key_only_in_sidecar(workload, &rendered);
    assert!(
        projects(volume, "grpc-token"),
        "the token file is mounted too"
    );

    let data = assert_config_points_at_files(&summary);
    assert_eq!(data["TRUSTLY_SIDECAR_GRPC_LISTEN"], "0.0.0.0:50051");
    assert_eq!(
        data["TRUSTLY_SIDECAR_GRPC_TOKEN_PATH"],
        format!("{MOUNT_PATH}/grpc-token")
    );
    // The Redis URL (with its password) is the one secret value passed as env, by reference.
    assert!(data.get("TRUSTLY_SIDECAR_REDIS_URL").is_none());
    let sidecar = &array(workload, "containers")[0];
    let redis = array(sidecar, "env")
        .iter()
        .find(|e| str_of(e, "name") == "TRUSTLY_SIDECAR_REDIS_URL")
        .expect("TRUSTLY_SIDECAR_REDIS_URL from the Secret");
    assert_eq!(redis["valueFrom"]["secretKeyRef"]["key"], "redis-url");
    assert!(redis.get("value").is_none());
}

#[test]
fn standalone_without_a_token_is_refused_by_schema_and_template() {
    let base = [
        "-f",
        "helm/trustly-sidecar/ci/standalone-no-netpol-values.yaml",
        "--set",
        "secret.keys.grpcToken=",
    ];
    let by_schema = helm_template(&base);
    assert!(
        !by_schema.status.success(),
        "standalone without a token rendered"
    );
    assert!(
        String::from_utf8_lossy(&by_schema.stderr).contains("secret.keys.grpcToken"),
        "{}",
        String::from_utf8_lossy(&by_schema.stderr)
    );

    let mut skip = base.to_vec();
    skip.push("--skip-schema-validation");
    let by_template = helm_template(&skip);
    assert!(
        !by_template.status.success(),
        "standalone without a token rendered"
    );
    assert!(
        String::from_utf8_lossy(&by_template.stderr).contains("requires a bearer token"),
        "{}",
        String::from_utf8_lossy(&by_template.stderr)
    );
}
