//! loadgen `--tls` against an independent TLS terminator: socat (OpenSSL) verifies the
//! client certificate and forwards the plaintext to `fstrm_capture` (libfstrm), whose file
//! must be byte-identical to the replayed capture. Without a client certificate the same
//! terminator refuses loadgen, which must then fail. Certificates are made at test time with
//! the openssl command and thrown away.
//!
//! Needs socat, openssl, fstrm_capture and the lab's captures; without them the test prints
//! why and passes, except with `CI=true`, where it fails.

#[path = "../../tests/support/skip.rs"]
mod skip;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn prerequisites() -> Option<PathBuf> {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab");
    let mut missing: Vec<String> = [
        ("fstrm_capture", "--help"),
        ("socat", "-V"),
        ("openssl", "version"),
    ]
    .into_iter()
    .filter(|(tool, arg)| !have(tool, arg))
    .map(|(tool, _)| format!("{tool} not found in PATH"))
    .collect();
    if !lab.join("captures").is_dir() {
        missing.push(format!("lab captures not found at {}", lab.display()));
    }
    if missing.is_empty() {
        return Some(lab.join("captures"));
    }
    skip::missing("loadgen --tls tests", &missing.join(", "));
    None
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `dnstap.test` and a client certificate, all signed by it.
fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=loadgen-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=DNS:dnstap.test\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "subjectAltName=DNS:sender.test\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.cnf")), ext).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.cnf"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output();
        if out.is_ok_and(|o| !o.stdout.is_empty()) {
            return;
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// fstrm_capture on TCP behind socat's TLS listener (client certificate required).
struct Terminator {
    capture: Child,
    socat: Child,
    out: PathBuf,
    port: u16,
}

impl Terminator {
    fn start(dir: &Path, tag: &str) -> Terminator {
        let (cap_port, tls_port) = (free_port(), free_port());
        let out = dir.join(format!("{tag}.fstrm"));
        let capture = Command::new("fstrm_capture")
            .args(["-t", "protobuf:dnstap.Dnstap", "-a", "127.0.0.1", "-p"])
            .arg(cap_port.to_string())
            .arg("-w")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(cap_port);
        let listen = format!(
            "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,cert={},key={},cafile={},verify=1",
            dir.join("server.pem").display(),
            dir.join("server.key").display(),
            dir.join("ca.pem").display()
        );
        let socat = Command::new("socat")
            .arg(listen)
            .arg(format!("TCP:127.0.0.1:{cap_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(tls_port);
        Terminator {
            capture,
            socat,
            out,
            port: tls_port,
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let _ = self.socat.wait();
        let _ = Command::new("kill")
            .args(["-TERM", &self.capture.id().to_string()])
            .status();
        self.capture.wait().unwrap();
        std::fs::read(&self.out).unwrap()
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.socat.wait();
        let _ = self.capture.kill();
        let _ = self.capture.wait();
    }
}

fn loadgen(dir: &Path, port: u16, extra: &[&str], input: &Path) -> Output {
    Command::new(LOADGEN)
        .args(["--tcp", &format!("127.0.0.1:{port}"), "--tls", "--tls-ca"])
        .arg(dir.join("ca.pem"))
        .args(["--tls-server-name", "dnstap.test", "--reply-timeout", "10"])
        .args(extra)
        .arg(input)
        .output()
        .unwrap()
}

#[test]
fn tls_replay_with_client_certificate_arrives_byte_identical() {
    let Some(captures) = prerequisites() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("loadgen-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_pki(&dir);
    let input = captures.join("unbound-tcp.fstrm");
    let want = std::fs::read(&input).unwrap();
    for version in ["1.2", "1.3"] {
        let t = Terminator::start(&dir, &format!("v{version}"));
        let client = [
            "--tls-cert",
            dir.join("client.pem").to_str().unwrap(),
            "--tls-key",
            dir.join("client.key").to_str().unwrap(),
            "--tls-version",
            version,
        ]
        .map(String::from);
        let client: Vec<&str> = client.iter().map(String::as_str).collect();
        let out = loadgen(&dir, t.port, &client, &input);
        assert!(
            out.status.success(),
            "TLS {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = t.finish();
        assert!(
            got == want,
            "TLS {version}: the capture behind the TLS terminator differs from the input"
        );
    }
    // No client certificate: the terminator refuses, loadgen reports a failed connection.
    let t = Terminator::start(&dir, "refused");
    let out = loadgen(&dir, t.port, &[], &input);
    assert!(
        !out.status.success(),
        "loadgen without a client certificate must fail"
    );
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}
