//! `kluis quickstart`: first steps on a new machine. Creates the user's
//! identity if there is none yet, then encrypts a sample file to it, shows
//! what the encrypted file reveals, decrypts it again and checks the result.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kluis_format::{
    Decryptor, EncryptOptions, Identity, KdfParams, Metadata, open_identity, seal_identity,
};

use crate::home::Home;
use crate::output::Output;
use crate::secret::Passphrases;

#[derive(Debug, clap::Args)]
pub struct QuickstartArgs {
    /// Where to put the sample files.
    #[arg(long, value_name = "DIR", default_value = "kluis-quickstart")]
    dir: PathBuf,
}

pub fn run(args: QuickstartArgs, pass: &Passphrases) -> Result<()> {
    let mut rng = kluis_format::rand_core::UnwrapErr(getrandom::SysRng);
    let home = Home::resolve()?;
    let id_path = home.identity();
    let identity = if id_path.exists() {
        println!("Using your identity in {}", id_path.display());
        let bytes = std::fs::read(&id_path)?;
        let p = pass.get(&id_path.display().to_string(), false)?;
        open_identity(&bytes, p.as_bytes())
            .with_context(|| format!("cannot open {}", id_path.display()))?
    } else {
        println!(
            "Creating your identity (a key pair protected by a passphrase) in {}",
            id_path.display()
        );
        let p = pass.get("your new identity", true)?;
        let id = Identity::generate(&mut rng);
        let sealed = seal_identity(&id, p.as_bytes(), KdfParams::DEFAULT, &mut rng)?;
        if let Some(dir) = id_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = Output::open(Some(&id_path))?;
        std::io::Write::write_all(&mut out, &sealed)?;
        #[cfg(unix)]
        if let Output::File { tmp, .. } = &out {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.get_ref().path(), std::fs::Permissions::from_mode(0o600))?;
        }
        out.commit()?;
        id
    };
    let me = identity.recipient();
    println!(
        "Your key id: {}   (compare it with colleagues out of band)",
        me.fingerprint()
    );

    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let plain_path = args.dir.join("welkom.txt");
    let enc_path = args.dir.join("welkom.txt.kluis");
    let back_path = args.dir.join("welkom.decrypted.txt");
    let text = "Welkom bij Kluis. Bienvenue dans Kluis. Welcome to Kluis.\nOnly the people you choose can read this.\n";
    std::fs::write(&plain_path, text)?;
    let meta = Metadata {
        name: Some("welkom.txt".into()),
        size: Some(text.len() as u64),
        label: Some("internal".into()),
        mtime: None,
    };
    let mut out = Output::open(Some(&enc_path))?;
    kluis_format::encrypt(
        text.as_bytes(),
        &mut out,
        std::slice::from_ref(me),
        &meta,
        EncryptOptions::default(),
        &mut rng,
    )?;
    out.commit()?;
    let enc = std::fs::read(&enc_path)?;
    if enc.windows(6).any(|w| w == b"Welkom" || w == b"welkom") {
        bail!("the encrypted file contains plaintext; please report this");
    }
    println!(
        "Encrypted {} -> {} ({} bytes, post-quantum X-Wing recipient, AES-256-GCM content)",
        plain_path.display(),
        enc_path.display(),
        enc.len()
    );

    let mut d = Decryptor::new(&enc[..], &identity)?;
    let mut back = String::new();
    d.read_to_string(&mut back)
        .map_err(kluis_format::Error::from_io)?;
    if back != text {
        bail!("the decrypted text differs from the original");
    }
    std::fs::write(&back_path, &back)?;
    println!(
        "Decrypted it again -> {} (identical; label {:?})",
        back_path.display(),
        d.metadata().label.as_deref().unwrap_or("-")
    );
    println!();
    println!("Next steps:");
    println!(
        "  kluis recipient                          print your public key to give to colleagues"
    );
    println!("  kluis encrypt -r kluis1... -o f.kluis f  encrypt a file for someone");
    println!("  kluis decrypt -o f f.kluis               decrypt a file sent to you");
    println!(
        "  kluis inspect {}      see what others can learn without a key",
        enc_path.display()
    );
    Ok(())
}
