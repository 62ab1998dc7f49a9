//! The control endpoint on this platform's own transport: a Unix socket, or
//! a named pipe on Windows. The same test runs on both (on Linux in CI; the
//! Windows build is run under Wine, see docs/AGENT.md).

use std::fs;
use std::sync::mpsc;
use std::time::Duration;

use kluis_agent::ipc::{Client, serve};
use kluis_agent::{Agent, AgentError, AgentHome, AgentOptions, Request, Response};
use kluis_format::{Identity, KdfParams};

fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn status(c: &mut Client) -> kluis_agent::Status {
    match c.call(&Request::Status).unwrap() {
        Response::Status(s) => s,
        other => panic!("expected a status, got {other:?}"),
    }
}

#[test]
fn the_endpoint_serves_clients_refuses_a_second_agent_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let home = AgentHome::in_dir(&dir.path().join("home"));
    fs::create_dir_all(&home.data).unwrap();
    let id = Identity::generate(&mut rng());
    fs::write(
        home.identity_file(),
        kluis_format::seal_identity(&id, b"correct horse", KdfParams::DEFAULT, &mut rng()).unwrap(),
    )
    .unwrap();
    let agent = Agent::start(home.clone(), AgentOptions::default(), None).unwrap();
    let endpoint = home.socket_path();
    let listener = serve(agent.handle(), &endpoint).unwrap();

    // Two clients at once, each with several requests on one connection.
    let mut a = Client::connect(&endpoint).unwrap();
    let mut b = Client::connect(&endpoint).unwrap();
    assert!(status(&mut a).locked);
    let wrong = b.call(&Request::Unlock {
        passphrase: "nope".into(),
    });
    assert!(
        matches!(wrong, Err(AgentError::Remote { ref code, .. }) if code == "wrong_passphrase"),
        "{wrong:?}"
    );
    b.call(&Request::Unlock {
        passphrase: "correct horse".into(),
    })
    .unwrap();
    assert!(!status(&mut a).locked, "the unlock on b is seen on a");
    a.call(&Request::Lock).unwrap();
    assert!(status(&mut b).locked);

    // A second agent on the same endpoint is refused, and the first one
    // keeps serving.
    let second = serve(agent.handle(), &endpoint);
    assert!(
        matches!(&second, Err(AgentError::Protocol(m)) if m.contains("already listens")),
        "{second:?}"
    );
    assert!(status(&mut Client::connect(&endpoint).unwrap()).locked);

    // Shutdown ends the listener (it is blocked waiting for a client), and
    // the endpoint is gone afterwards.
    drop((a, b));
    agent.handle().shutdown();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(listener.join().is_ok()));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)),
        Ok(true),
        "the listener thread did not end after shutdown"
    );
    agent.wait();
    assert!(!endpoint.exists(), "{} left behind", endpoint.display());
    let gone = Client::connect(&endpoint);
    assert!(matches!(gone, Err(AgentError::NotRunning(_))), "{gone:?}");
}
