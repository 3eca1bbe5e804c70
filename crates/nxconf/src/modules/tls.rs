//! The TLS directives of om_ssl (CAFile, CertFile, AllowUntrusted...):
//! [`Tls`], their checked settings, and the readers of the PEM files they
//! name. The files are read once at load time, so a missing or unreadable
//! file, a file with no certificate, or a wrong KeyPass is a configuration
//! error at its line (NXLog reports these when the module starts); regmon
//! reads them again through the same functions when it connects.
//!
//! Not a module type of its own: om_ssl is om_tcp's directives plus these.

use super::spec::{Build, DirectiveSpec, ValueType as V};
use crate::diag::Location;
use crate::directive::Directive;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};

/// Directives, in the order messages list them.
pub(crate) const DIRECTIVES: &[DirectiveSpec] = &[
    DirectiveSpec::once("CAFile", V::String, None),
    DirectiveSpec::once("CADir", V::String, None),
    DirectiveSpec::once("CertFile", V::String, None),
    DirectiveSpec::once("CertKeyFile", V::String, None),
    DirectiveSpec::once("KeyPass", V::String, None),
    DirectiveSpec::once("CRLFile", V::String, None),
    DirectiveSpec::once("CRLDir", V::String, None),
    DirectiveSpec::once("RequireCert", V::Bool, Some("TRUE")),
    DirectiveSpec::once("AllowUntrusted", V::Bool, Some("FALSE")),
    DirectiveSpec::once("AllowExpired", V::Bool, Some("FALSE")),
    DirectiveSpec::once("SSLProtocol", V::String, Some("TLSv1.2, TLSv1.3")),
    DirectiveSpec::once("SSLCompression", V::Bool, Some("FALSE")),
];

/// NXLog EE TLS directives regmon refuses by name: cipher lists are
/// OpenSSL syntax (rustls offers only its own modern suites), and the
/// thumbprint ones read the Windows certificate store.
pub(crate) const UNSUPPORTED: &[&str] = &[
    "SSLCipher",
    "SSLCipherSuites",
    "CAThumbprint",
    "CertThumbprint",
    "ThumbprintStore",
];

/// A TLS protocol version regmon speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// A file or folder a TLS directive names, with where it was configured
/// (for messages when it is read again at connect time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPath {
    /// The directive (`CAFile`).
    pub directive: &'static str,
    /// As written (relative paths are relative to the working directory,
    /// as in NXLog).
    pub path: PathBuf,
    pub at: Location,
}

impl fmt::Display for TlsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} '{}' ({})",
            self.directive,
            self.path.display(),
            self.at
        )
    }
}

/// A key passphrase: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Checked TLS settings of an om_ssl block.
#[derive(Clone, Debug)]
pub struct Tls {
    /// PEM file of trusted CA certificates.
    pub ca_file: Option<TlsPath>,
    /// Folder of PEM files of trusted CA certificates (every file in it
    /// is read; OpenSSL's hashed names are not needed).
    pub ca_dir: Option<TlsPath>,
    /// Client certificate (PEM; its chain may follow it in the file).
    pub cert_file: Option<TlsPath>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1;
    /// `ENCRYPTED PRIVATE KEY` with KeyPass).
    pub cert_key_file: Option<TlsPath>,
    pub key_pass: Option<Secret>,
    /// PEM CRLs checked against the server's chain.
    pub crl_file: Option<TlsPath>,
    pub crl_dir: Option<TlsPath>,
    /// Default TRUE. A TLS server always presents a certificate to a
    /// client, so for an output this changes nothing.
    pub require_cert: bool,
    /// Default FALSE: TRUE accepts any server certificate (no chain, name
    /// or date check); the connection is still encrypted.
    pub allow_untrusted: bool,
    /// Default FALSE: TRUE accepts a chain that is valid except that a
    /// certificate in it has expired.
    pub allow_expired: bool,
    /// SSLProtocol, default TLSv1.2 and TLSv1.3; never empty.
    pub protocols: Vec<TlsVersion>,
}

/// Check an om_ssl block's TLS directives into [`Tls`]; the files they
/// name are read now so their problems point at their lines.
pub(crate) fn build(cx: &mut Build) -> Option<Tls> {
    let mut ok = true;
    let mut path = |cx: &mut Build, name: &'static str| -> Option<TlsPath> {
        let d = cx.one(name)?;
        let Some(v) = cx.constant_string(d) else {
            ok = false;
            return None;
        };
        if v.is_empty() {
            cx.error(d, format!("{name} is empty: it names a file"));
            ok = false;
            return None;
        }
        Some(TlsPath {
            directive: name,
            path: PathBuf::from(v),
            at: d.location.clone(),
        })
    };
    let ca_file = path(cx, "CAFile");
    let ca_dir = path(cx, "CADir");
    let cert_file = path(cx, "CertFile");
    let cert_key_file = path(cx, "CertKeyFile");
    let crl_file = path(cx, "CRLFile");
    let crl_dir = path(cx, "CRLDir");
    let key_pass = match cx.one("KeyPass") {
        Some(d) => match cx.constant_string(d) {
            Some(v) => Some(Secret(v)),
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    let (mut require_cert, mut allow_untrusted, mut allow_expired) = (true, false, false);
    cx.bool_into("RequireCert", &mut require_cert);
    cx.bool_into("AllowUntrusted", &mut allow_untrusted);
    cx.bool_into("AllowExpired", &mut allow_expired);
    let mut compression = false;
    cx.bool_into("SSLCompression", &mut compression);
    if compression {
        if let Some(d) = cx.one("SSLCompression") {
            cx.error(
                d,
                "SSLCompression TRUE is not supported: rustls has no TLS compression \
                 (it leaks secrets, CRIME); remove the line or set FALSE",
            );
            ok = false;
        }
    }
    let protocols = match cx.one("SSLProtocol") {
        Some(d) => match cx.constant_string(d).map(|v| parse_protocols(&v)) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                cx.error(d, e);
                ok = false;
                Vec::new()
            }
            None => {
                ok = false;
                Vec::new()
            }
        },
        None => vec![TlsVersion::Tls12, TlsVersion::Tls13],
    };
    let tls = Tls {
        ca_file,
        ca_dir,
        cert_file,
        cert_key_file,
        key_pass,
        crl_file,
        crl_dir,
        require_cert,
        allow_untrusted,
        allow_expired,
        protocols,
    };
    // A client certificate needs its key and the other way round (NXLog
    // silently ignores one without the other: a client certificate the
    // user believes is sent, and is not).
    match (&tls.cert_file, &tls.cert_key_file) {
        (Some(c), None) => {
            let d = directive(cx, "CertFile");
            cx.error(
                &d,
                format!("{c} needs CertKeyFile, the file of its private key"),
            );
            ok = false;
        }
        (None, Some(k)) => {
            let d = directive(cx, "CertKeyFile");
            cx.error(
                &d,
                format!("{k} needs CertFile, the certificate it goes with"),
            );
            ok = false;
        }
        _ => {}
    }
    if tls.ca_file.is_none() && tls.ca_dir.is_none() && !tls.allow_untrusted {
        cx.block_error(format!(
            "<Output {}>: TLS needs the CA that signed the server's certificate: set CAFile \
             (or CADir), or AllowUntrusted TRUE to accept any certificate",
            cx.block.name
        ));
        ok = false;
    }
    if tls.key_pass.is_some() && tls.cert_key_file.is_none() {
        let d = directive(cx, "KeyPass");
        cx.error(
            &d,
            "KeyPass is the passphrase of CertKeyFile, which is not set",
        );
        ok = false;
    }
    if ok {
        // Read everything once, reporting each problem at its directive.
        type Check = fn(&Tls) -> Result<(), String>;
        let checks: [(&'static str, Check); 5] = [
            ("CAFile", |t| t.ca_file_certs().map(drop)),
            ("CADir", |t| t.ca_dir_certs().map(drop)),
            ("CertFile", |t| t.cert_chain().map(drop)),
            ("CertKeyFile", |t| t.private_key().map(drop)),
            ("CRLFile", |t| t.crls().map(drop)),
        ];
        for (name, check) in checks {
            if let Err(e) = check(&tls) {
                let d = directive(cx, name);
                cx.error(&d, e);
                ok = false;
            }
        }
    }
    ok.then_some(tls)
}

/// The directive `name` of the block, or a stand-in at the block's line
/// (for a problem about a directive that is absent).
fn directive(cx: &Build, name: &str) -> Directive {
    match cx.one(name) {
        Some(d) => d.clone(),
        None => Directive {
            name: name.to_string(),
            value: String::new(),
            location: cx.block.loc.clone(),
            line_text: cx.block.raw.clone(),
        },
    }
}

/// SSLProtocol: versions separated by commas or spaces (`TLSv1.2, TLSv1.3`).
fn parse_protocols(v: &str) -> Result<Vec<TlsVersion>, String> {
    let mut out = Vec::new();
    for word in v.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
        let version = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => TlsVersion::Tls12,
            "tlsv1.3" => TlsVersion::Tls13,
            "sslv2" | "sslv3" | "tlsv1" | "tlsv1.0" | "tlsv1.1" => {
                return Err(format!(
                    "SSLProtocol {word} is not supported: regmon's TLS (rustls) speaks only \
                     TLSv1.2 and TLSv1.3 (the older versions are broken and deprecated, RFC 8996)"
                ))
            }
            _ => {
                return Err(format!(
                    "unknown protocol '{word}' in SSLProtocol: expected TLSv1.2 and/or TLSv1.3, \
                     e.g. SSLProtocol TLSv1.2, TLSv1.3"
                ))
            }
        };
        if !out.contains(&version) {
            out.push(version);
        }
    }
    if out.is_empty() {
        return Err("SSLProtocol is empty: expected TLSv1.2 and/or TLSv1.3".to_string());
    }
    Ok(out)
}

impl Tls {
    /// The CA certificates of CAFile and CADir (none when neither is set).
    pub fn ca_certs(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let mut certs = self.ca_file_certs()?;
        certs.extend(self.ca_dir_certs()?);
        Ok(certs)
    }

    fn ca_file_certs(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        match &self.ca_file {
            Some(p) => certs_in(p, &p.path),
            None => Ok(Vec::new()),
        }
    }

    /// Every certificate in the files of CADir; files that hold no
    /// certificate (hash links to CRLs, READMEs) are skipped, but a folder
    /// with no certificate at all is an error.
    fn ca_dir_certs(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let Some(p) = &self.ca_dir else {
            return Ok(Vec::new());
        };
        let mut certs = Vec::new();
        for file in dir_files(p)? {
            if let Ok(c) = certs_in(p, &file) {
                certs.extend(c);
            }
        }
        if certs.is_empty() {
            return Err(format!("{p}: no PEM certificate in any file of the folder"));
        }
        Ok(certs)
    }

    /// CertFile's certificate and the chain that follows it (empty when not set).
    pub fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        match &self.cert_file {
            Some(p) => certs_in(p, &p.path),
            None => Ok(Vec::new()),
        }
    }

    /// CertKeyFile's private key, decrypted with KeyPass when it is an
    /// `ENCRYPTED PRIVATE KEY` (PKCS#8 with PBES2: AES-CBC with PBKDF2 or
    /// scrypt, what `openssl pkcs8 -topk8` writes). None when not set.
    pub fn private_key(&self) -> Result<Option<PrivateKeyDer<'static>>, String> {
        let Some(p) = &self.cert_key_file else {
            return Ok(None);
        };
        let text = std::fs::read(&p.path).map_err(|e| format!("{p}: cannot read: {e}"))?;
        if contains(&text, b"Proc-Type: 4,ENCRYPTED") {
            return Err(format!(
                "{p}: the key is encrypted in the legacy OpenSSL format, which regmon cannot \
                 decrypt; convert it to encrypted PKCS#8 with \
                 `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`"
            ));
        }
        if let Some(pem) = section(&text, "ENCRYPTED PRIVATE KEY") {
            let Some(pass) = &self.key_pass else {
                return Err(format!(
                    "{p}: the key is encrypted (ENCRYPTED PRIVATE KEY): set KeyPass"
                ));
            };
            let (_, der) = pkcs8::der::pem::decode_vec(pem)
                .map_err(|e| format!("{p}: bad ENCRYPTED PRIVATE KEY block: {e}"))?;
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                .map_err(|e| format!("{p}: bad ENCRYPTED PRIVATE KEY block: {e}"))?;
            let plain = info.decrypt(pass.0.as_bytes()).map_err(|e| {
                format!("{p}: cannot decrypt the key with KeyPass (wrong passphrase?): {e}")
            })?;
            return Ok(Some(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into())));
        }
        match PrivateKeyDer::from_pem_slice(&text) {
            Ok(k) => Ok(Some(k)),
            Err(rustls_pki_types::pem::Error::NoItemsFound) => Err(format!(
                "{p}: no private key in it (expected a PEM PRIVATE KEY, RSA PRIVATE KEY \
                 or EC PRIVATE KEY block)"
            )),
            Err(e) => Err(format!("{p}: {e}")),
        }
    }

    /// The CRLs of CRLFile and CRLDir.
    pub fn crls(&self) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
        let mut out = Vec::new();
        if let Some(p) = &self.crl_file {
            out.extend(crls_in(p, &p.path)?);
            if out.is_empty() {
                return Err(format!("{p}: no PEM X509 CRL block in it"));
            }
        }
        if let Some(p) = &self.crl_dir {
            let before = out.len();
            for file in dir_files(p)? {
                if let Ok(c) = crls_in(p, &file) {
                    out.extend(c);
                }
            }
            if out.len() == before {
                return Err(format!("{p}: no PEM CRL in any file of the folder"));
            }
        }
        Ok(out)
    }
}

/// The regular files of a folder directive, sorted (for stable messages).
fn dir_files(p: &TlsPath) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(&p.path).map_err(|e| format!("{p}: cannot read the folder: {e}"))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn certs_in(p: &TlsPath, file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text =
        std::fs::read(file).map_err(|e| format!("{p}: cannot read {}: {e}", file.display()))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{p}: {}: {e}", file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{p}: no certificate in {} (expected PEM -----BEGIN CERTIFICATE----- blocks)",
            file.display()
        ));
    }
    Ok(certs)
}

fn crls_in(p: &TlsPath, file: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let text =
        std::fs::read(file).map_err(|e| format!("{p}: cannot read {}: {e}", file.display()))?;
    CertificateRevocationListDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{p}: {}: {e}", file.display()))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The PEM text of the first `label` section, BEGIN to END lines included.
fn section<'a>(text: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .windows(begin.len())
        .position(|w| w == begin.as_bytes())?;
    let len = text[start..]
        .windows(end.len())
        .position(|w| w == end.as_bytes())?;
    Some(&text[start..start + len + end.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(
            parse_protocols("TLSv1.2, TLSv1.3"),
            Ok(vec![TlsVersion::Tls12, TlsVersion::Tls13])
        );
        assert_eq!(parse_protocols("tlsv1.3"), Ok(vec![TlsVersion::Tls13]));
        let e = parse_protocols("TLSv1.1, TLSv1.2").unwrap_err();
        assert!(e.contains("TLSv1.1 is not supported"), "{e}");
        let e = parse_protocols("SSLv3").unwrap_err();
        assert!(e.contains("SSLv3 is not supported"), "{e}");
        assert!(parse_protocols("TLS1.2")
            .unwrap_err()
            .contains("unknown protocol"));
        assert!(parse_protocols(" , ").is_err());
    }

    /// The TLS settings of the first block of `conf`, or its error messages.
    fn tls(conf: &str) -> Result<Tls, String> {
        let mut reader = crate::source::Reader::new();
        reader.read_text(conf, "t.conf", Path::new("."));
        let mut errors = Vec::new();
        let st = crate::block::parse_structure(&reader.lines, &mut errors);
        let scope = crate::modules::constant_scope();
        let mut notes = Vec::new();
        let block = st.blocks.first().expect("a block");
        let t = build(&mut Build {
            block,
            scope: &scope,
            constants: &scope,
            errors: &mut errors,
            notes: &mut notes,
        });
        t.ok_or_else(|| {
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    /// Runs openssl (the CLI) in `dir`; the tests that need files skip
    /// the key formats they cannot make without it.
    fn openssl(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the openssl command (package openssl) makes the test keys");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the openssl command is a Linux program here; the Linux run covers this test"
    )]
    fn files_are_read_at_load_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-subj",
                "/CN=client",
            ],
        );
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                "key.pem",
                "-out",
                "enc.pem",
                "-passout",
                "pass:s3cret",
            ],
        );
        std::fs::write(d.join("empty.pem"), "nothing here\n").unwrap();
        let p = |f: &str| d.join(f).display().to_string();
        let block = |lines: &str| format!("<Output o>\nModule om_ssl\n{lines}</Output>\n");

        let t = tls(&block(&format!(
            "CAFile {}\nCertFile {}\nCertKeyFile {}\nKeyPass s3cret\n",
            p("cert.pem"),
            p("cert.pem"),
            p("enc.pem")
        )))
        .unwrap();
        assert_eq!(t.ca_certs().unwrap().len(), 1);
        assert!(t.private_key().unwrap().is_some());
        assert_eq!(t.protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert!(t.require_cert && !t.allow_untrusted && !t.allow_expired);
        assert!(!format!("{t:?}").contains("s3cret"));

        let e = tls(&block(&format!(
            "CAFile {}\nCertFile {}\nCertKeyFile {}\nKeyPass wrong\n",
            p("cert.pem"),
            p("cert.pem"),
            p("enc.pem")
        )))
        .unwrap_err();
        assert!(
            e.contains("t.conf:5") && e.contains("wrong passphrase"),
            "{e}"
        );

        let e = tls(&block(&format!(
            "CAFile {}\nCertFile {}\nCertKeyFile {}\n",
            p("cert.pem"),
            p("cert.pem"),
            p("enc.pem")
        )))
        .unwrap_err();
        assert!(e.contains("t.conf:5") && e.contains("set KeyPass"), "{e}");

        let e = tls(&block(&format!("CAFile {}\n", p("empty.pem")))).unwrap_err();
        assert!(
            e.contains("t.conf:3") && e.contains("no certificate"),
            "{e}"
        );
        let e = tls(&block(&format!("CAFile {}\n", p("missing.pem")))).unwrap_err();
        assert!(e.contains("t.conf:3") && e.contains("cannot read"), "{e}");
        let e = tls(&block(&format!("CADir {}\n", p("")))).map(drop);
        assert!(e.is_ok(), "{e:?}");
        let e = tls(&block(&format!(
            "AllowUntrusted TRUE\nCertFile {}\n",
            p("cert.pem")
        )))
        .unwrap_err();
        assert!(e.contains("needs CertKeyFile"), "{e}");
        let e = tls(&block("SSLProtocol TLSv1.1\n")).unwrap_err();
        assert!(e.contains("t.conf:3") && e.contains("not supported"), "{e}");
        let e = tls(&block("")).unwrap_err();
        assert!(e.contains("set CAFile"), "{e}");
        let t = tls(&block("AllowUntrusted TRUE\nSSLProtocol TLSv1.3\n")).unwrap();
        assert_eq!(t.protocols, vec![TlsVersion::Tls13]);
    }

    #[test]
    fn section_finds_a_block() {
        let t = b"x\n-----BEGIN A-----\nQUJD\n-----END A-----\ny";
        assert_eq!(
            section(t, "A"),
            Some(&b"-----BEGIN A-----\nQUJD\n-----END A-----"[..])
        );
        assert_eq!(section(t, "B"), None);
    }
}
