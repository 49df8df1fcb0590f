//! `pinfold inspect REF`: what an image is made of, for people and (with `--json`)
//! for scripts. Reads through the same verified reader as bases, so inspecting an
//! image also checks every JSON blob against its digest.

use super::{EXIT_ERROR, EXIT_OK};
use crate::cache::gc::human_size;
use pinfold_image::oci::reference::ImageRef;
use serde_json::json;

pub fn run(args: super::InspectArgs) -> i32 {
    let reference = match args.reference.parse::<ImageRef>() {
        Ok(r) => r,
        Err(e) => return super::usage_error(e),
    };
    let reference = match super::names::build_if_name(&reference, &args.file, None) {
        Ok(r) => r,
        Err(rendered) => {
            eprint!("{rendered}");
            return EXIT_ERROR;
        }
    };
    let image = match crate::resolve::open_image(&reference) {
        Ok(i) => i,
        Err(e) => return super::usage_error(format!("{reference}: {e}")),
    };
    // The packages of each platform's image, when asked: every layer is read.
    let mut packages = Vec::new();
    if args.packages {
        for m in &image.manifests {
            match crate::compare::packages::of_image(&image.archive, m) {
                Ok(found) => packages.push(found),
                Err(e) => {
                    eprintln!("error: {reference}: {e}");
                    return EXIT_ERROR;
                }
            }
        }
    }
    let manifests: Vec<serde_json::Value> = image
        .manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let diff_ids = m.config.rootfs().diff_ids();
            let mut doc = json!({
                "platform": m.platform.as_ref().map(|p| p.to_string()),
                "digest": m.manifest_digest.to_string(),
                "config": {
                    "digest": m.config_digest.to_string(),
                    "created": m.config.created(),
                    "config": m.config.config(),
                },
                "layers": m.layers.iter().zip(diff_ids).map(|(l, d)| json!({
                    "digest": l.digest.to_string(),
                    "size": l.size,
                    "mediaType": l.media_type,
                    "diffId": d,
                })).collect::<Vec<_>>(),
            });
            if let Some(found) = packages.get(i) {
                doc["packages"] = json!(found);
            }
            doc
        })
        .collect();
    if args.json {
        let doc = json!({
            "reference": reference.to_string(),
            "digest": image.top.digest.to_string(),
            "mediaType": image.top.media_type,
            "manifests": manifests,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialize"));
        return EXIT_OK;
    }
    println!("{reference}");
    println!("  digest     {}", image.top.digest);
    println!("  media type {}", image.top.media_type);
    for (i, m) in image.manifests.iter().enumerate() {
        let platform = m.platform.as_ref().map_or("unknown platform".to_string(), |p| p.to_string());
        println!("  {platform}");
        println!("    manifest   {}", m.manifest_digest);
        println!("    config     {}", m.config_digest);
        if let Some(created) = m.config.created() {
            println!("    created    {created}");
        }
        if let Some(c) = m.config.config() {
            if let Some(e) = c.entrypoint() {
                println!("    entrypoint {e:?}");
            }
            if let Some(cmd) = c.cmd() {
                println!("    cmd        {cmd:?}");
            }
            if let Some(env) = c.env() {
                for v in env {
                    println!("    env        {v}");
                }
            }
            if let Some(w) = c.working_dir() {
                println!("    workdir    {w}");
            }
            if let Some(u) = c.user() {
                println!("    user       {u}");
            }
        }
        for (l, d) in m.layers.iter().zip(m.config.rootfs().diff_ids()) {
            println!(
                "    layer      {} {:>10} {}  diff_id {d}",
                l.digest,
                human_size(l.size),
                short_media(&l.media_type)
            );
        }
        if let Some(found) = packages.get(i) {
            let count = |kind: &str| found.iter().filter(|p| p.kind == kind).count();
            println!("    packages   {} Debian, {} Python", count("deb"), count("python"));
            for p in found {
                let arch = if p.architecture.is_empty() { String::new() } else { format!(" {}", p.architecture) };
                println!("      {:<6} {} {}{arch}", p.kind, p.name, p.version);
            }
        }
    }
    EXIT_OK
}

fn short_media(media_type: &str) -> &str {
    media_type.rsplit('.').next().unwrap_or(media_type)
}
