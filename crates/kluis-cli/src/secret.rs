//! Passphrases: from `--passphrase-file`, `KLUIS_PASSPHRASE`, or a prompt
//! without echo. Always held in zeroizing memory, never logged.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// Where passphrases come from for this invocation.
#[derive(Debug)]
pub struct Passphrases {
    file: Option<PathBuf>,
}

impl Passphrases {
    pub fn new(file: Option<PathBuf>) -> Self {
        Passphrases { file }
    }

    /// A new passphrase: from this source's file, or a prompt asked twice.
    /// Never from `KLUIS_PASSPHRASE`, which holds the current one.
    pub fn get_new(&self, what: &str) -> Result<Zeroizing<String>> {
        if self.file.is_some() {
            return self.get(what, true);
        }
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("New passphrase for {what}: ")).context(
                "cannot prompt for a passphrase (no terminal); use --new-passphrase-file",
            )?,
        );
        if first.is_empty() {
            bail!("empty passphrase");
        }
        let again = Zeroizing::new(rpassword::prompt_password("Repeat the new passphrase: ")?);
        if *again != *first {
            bail!("the passphrases do not match");
        }
        Ok(first)
    }

    /// Another passphrase than the current one (e.g. the one before a
    /// change): from this source's file, or one prompt. Never from
    /// `KLUIS_PASSPHRASE`, which holds the current one.
    pub fn get_other(&self, what: &str) -> Result<Zeroizing<String>> {
        if self.file.is_some() {
            return self.get(what, false);
        }
        let text = Zeroizing::new(
            rpassword::prompt_password(format!("Passphrase for {what}: ")).context(
                "cannot prompt for a passphrase (no terminal); use --previous-passphrase-file",
            )?,
        );
        if text.is_empty() {
            bail!("empty passphrase");
        }
        Ok(text)
    }

    /// Get the passphrase for `what`; `confirm` asks twice when prompting.
    pub fn get(&self, what: &str, confirm: bool) -> Result<Zeroizing<String>> {
        if let Some(path) = &self.file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read passphrase file {}", path.display()))?,
            );
            let line = text.lines().next().unwrap_or("");
            if line.is_empty() {
                bail!("passphrase file {} is empty", path.display());
            }
            return Ok(Zeroizing::new(line.to_owned()));
        }
        if let Some(p) = std::env::var_os("KLUIS_PASSPHRASE") {
            let p = Zeroizing::new(
                p.into_string()
                    .map_err(|_| anyhow::anyhow!("KLUIS_PASSPHRASE is not valid UTF-8"))?,
            );
            if p.is_empty() {
                bail!("KLUIS_PASSPHRASE is empty");
            }
            return Ok(p);
        }
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("Passphrase for {what}: "))
                .context("cannot prompt for a passphrase (no terminal); use --passphrase-file")?,
        );
        if first.is_empty() {
            bail!("empty passphrase");
        }
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat the passphrase: ")?);
            if *again != *first {
                bail!("the passphrases do not match");
            }
        }
        Ok(first)
    }
}
