//! The package-set nodes: `debian NAME { … }` and `python NAME { … }` at the top level,
//! and `install NAME` inside a layer. A package set names what to install; `pinfold
//! lock` resolves it to exact files with their sha256 (`spec/packages.md`), and the
//! build installs those files itself, so a set never needs a package manager or the
//! network at build time beyond the pinned fetches.
//!
//! They are parsed here, apart from `parse.rs`, because they are a language of their
//! own (suites, components, requirement files) that only the package crates read.

use crate::diag::Code;
use crate::parse::{prop, Cx};
use crate::syntax::{DebianDecl, EntryDecl, Platform, PythonDecl, Spanned};
use kdl::KdlNode;

const DEBIAN_CHILDREN: &[&str] = &["suite", "components", "packages", "platform", "mirror", "keyring", "essential"];
const PYTHON_CHILDREN: &[&str] = &["requirements", "packages", "pylock", "python", "index"];

impl Cx<'_> {
    /// `debian NAME { suite "bookworm" …; components "main"; packages "python3" …;
    /// platform "linux/arm64" { packages … }; mirror "URL"; keyring "FILE" sha256="…";
    /// essential #true }`.
    pub(crate) fn debian(&mut self, node: &KdlNode) -> Option<DebianDecl> {
        self.check_props(node, &[]);
        let name = self.name_arg(node, "a name")?;
        let mut decl = DebianDecl {
            name,
            suites: Vec::new(),
            components: Vec::new(),
            packages: Vec::new(),
            platform_packages: Vec::new(),
            mirrors: Vec::new(),
            keyring: None,
            keyring_sha256: None,
            essential: false,
            span: node.span(),
        };
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            let kind = child.name().value();
            match kind {
                "suite" | "components" | "packages" | "mirror" => {
                    self.check_props(child, &[]);
                    self.no_children(child);
                    let list = self.arity(child, 1, usize::MAX, "one or more names");
                    let values = self.strings(&list, kind);
                    match kind {
                        "suite" => decl.suites.extend(values),
                        "components" => decl.components.extend(values),
                        "packages" => decl.packages.extend(values),
                        _ => decl.mirrors.extend(values),
                    }
                }
                "platform" => {
                    self.check_props(child, &[]);
                    let list = self.arity(child, 1, 1, "a platform such as \"linux/arm64\"");
                    let Some(p) = list.first().and_then(|e| self.string(e, "the platform")) else { continue };
                    let platform = match p.value.parse::<Platform>() {
                        Ok(platform) => Spanned::new(platform, p.span),
                        Err(message) => {
                            self.error(Code::BadPlatform, message, p.span, "not a platform");
                            continue;
                        }
                    };
                    let mut packages = Vec::new();
                    for grandchild in child.children().map(|c| c.nodes()).unwrap_or_default() {
                        if grandchild.name().value() != "packages" {
                            self.unknown_node(grandchild, "in a package set's platform", &["packages"]);
                            continue;
                        }
                        self.check_props(grandchild, &[]);
                        self.no_children(grandchild);
                        let list = self.arity(grandchild, 1, usize::MAX, "one or more package names");
                        packages.extend(self.strings(&list, "a package"));
                    }
                    decl.platform_packages.push((platform, packages));
                }
                "keyring" => {
                    self.check_props(child, &["sha256"]);
                    self.no_children(child);
                    let list = self.arity(child, 1, 1, "a keyring file below the build file");
                    if let Some(path) = list.first().and_then(|e| self.string(e, "the keyring")) {
                        if self.relative_path(&path, "a keyring") {
                            decl.keyring = Some(path);
                        }
                    }
                    decl.keyring_sha256 = self.sha256_prop(child);
                    if prop(child, "sha256").is_none() {
                        let diag = self.error(
                            Code::MissingProperty,
                            "a keyring is pinned by its sha256",
                            child.span(),
                            "no `sha256`",
                        );
                        diag.help = Some("add sha256=\"…\" as `sha256sum FILE` prints it".into());
                    }
                }
                "essential" => {
                    self.check_props(child, &[]);
                    self.no_children(child);
                    let list = self.arity(child, 1, 1, "#true or #false");
                    match list.first().map(|e| e.value()) {
                        Some(kdl::KdlValue::Bool(b)) => decl.essential = *b,
                        Some(other) => {
                            let what = crate::parse::type_name(other);
                            self.error(
                                Code::BadType,
                                format!("`essential` takes #true or #false, not {what}"),
                                child.span(),
                                "not a boolean",
                            );
                        }
                        None => {}
                    }
                }
                _ => self.unknown_node(child, "in a debian package set", DEBIAN_CHILDREN),
            }
        }
        for (present, what, example) in [
            (!decl.suites.is_empty(), "suite", "suite \"bookworm\""),
            (!decl.components.is_empty(), "components", "components \"main\""),
            (!decl.packages.is_empty() || !decl.platform_packages.is_empty(), "packages", "packages \"python3\""),
        ] {
            if !present {
                let diag = self.error(
                    Code::MissingNode,
                    format!("debian `{}` needs `{what}`", decl.name.value),
                    node.span(),
                    format!("no `{what}`"),
                );
                diag.help = Some(format!("add `{example}`"));
            }
        }
        Some(decl)
    }

    /// `python NAME { requirements "requirements.txt"; packages "numpy==2.1.*";
    /// pylock "pylock.toml"; python "3.11"; index "URL" }`.
    pub(crate) fn python(&mut self, node: &KdlNode) -> Option<PythonDecl> {
        self.check_props(node, &[]);
        let name = self.name_arg(node, "a name")?;
        let mut decl = PythonDecl {
            name,
            requirements: Vec::new(),
            packages: Vec::new(),
            pylock: None,
            python: None,
            index: None,
            span: node.span(),
        };
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            let kind = child.name().value();
            if !PYTHON_CHILDREN.contains(&kind) {
                self.unknown_node(child, "in a python package set", PYTHON_CHILDREN);
                continue;
            }
            self.check_props(child, &[]);
            self.no_children(child);
            let (min, max) = if matches!(kind, "requirements" | "packages") { (1, usize::MAX) } else { (1, 1) };
            let list = self.arity(child, min, max, "a value");
            let values = self.strings(&list, kind);
            match kind {
                "requirements" => {
                    for path in values {
                        if self.relative_path(&path, "a requirements file") {
                            decl.requirements.push(path);
                        }
                    }
                }
                "packages" => decl.packages.extend(values),
                "pylock" => decl.pylock = values.into_iter().next().filter(|p| self.relative_path(p, "a pylock.toml")),
                "python" => decl.python = values.into_iter().next(),
                _ => decl.index = values.into_iter().next(),
            }
        }
        if decl.python.is_none() {
            let diag = self.error(
                Code::MissingNode,
                format!("python `{}` needs the target interpreter's version", decl.name.value),
                node.span(),
                "no `python`",
            );
            diag.help = Some("add `python \"3.11\"`: wheels are chosen for that interpreter, not the host's".into());
        }
        if decl.requirements.is_empty() && decl.packages.is_empty() && decl.pylock.is_none() {
            let diag = self.error(
                Code::MissingNode,
                format!("python `{}` names nothing to install", decl.name.value),
                node.span(),
                "no `requirements`, `packages` or `pylock`",
            );
            diag.help = Some("add `requirements \"requirements.txt\"` or `packages \"numpy==2.1.*\"`".into());
        }
        Some(decl)
    }

    /// `install NAME [to="/opt/venv"]` inside a layer.
    pub(crate) fn install_entry(&mut self, child: &KdlNode) -> Option<EntryDecl> {
        self.check_props(child, &["to"]);
        let list = self.arity(child, 1, 1, "the name of a debian or python package set");
        let name = list.first().and_then(|e| self.string(e, "the package set's name"))?;
        let to = match prop(child, "to") {
            Some(e) => Some(self.string(e, "the destination")?),
            None => None,
        };
        if let Some(to) = &to {
            if !pinfold_image::layer::tree::is_clean_absolute(&to.value) {
                self.error(
                    Code::BadPath,
                    format!("`{}` is not an absolute path in the image", to.value),
                    to.span,
                    "not absolute, or climbs with `..`",
                );
            }
        }
        Some(EntryDecl::Install { name, to, span: child.span() })
    }
}
