//! The tray icon: its colour follows the platform's health (green healthy, amber degraded, red
//! down, grey before anything is set up), its tooltip says why, and its menu lists every node's
//! state, the four-rule scorecard, "Open dashboard", "Open logs" and "Quit" (what they do:
//! [`crate::lifecycle`]). Each look of the platform ([`crate::status`]) redraws it, changing the
//! lines' text in place while their number stays, so the menu keeps its items (and a menu held
//! open keeps working).

use std::sync::Mutex;

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{App, AppHandle, Manager, Wry};
use twofold::rules::RuleState;
use twofold::status::{Health, NodeState, PlatformStatus};

use crate::error::UiError;
use crate::lifecycle;

const TRAY_ID: &str = "twofold";

/// The menu's information lines as shown, to change their text in place.
struct Lines {
    items: Vec<MenuItem<Wry>>,
    /// The line count and node count the menu was built for: its layout.
    shape: (usize, usize),
}

pub fn install(app: &App) -> tauri::Result<()> {
    let menu = menu_of(app.handle(), None)?;
    let mut tray = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Twofold: looking at the platform…")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => lifecycle::show_main_window(app),
            "logs" => lifecycle::open_logs(app),
            "quit" => lifecycle::request_quit(app),
            _ => {}
        });
    if let Some(icon) = badged(app.handle(), None) {
        tray = tray.icon(icon);
    }
    tray.build(app)?;
    Ok(())
}

/// Redraw the tray for one look at the platform.
pub fn show(app: &AppHandle, s: &PlatformStatus) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let _ = tray.set_tooltip(Some(format!("Twofold: {}. {}", s.headline, s.summary)));
    if let Some(icon) = badged(app, Some(s.health)) {
        let _ = tray.set_icon(Some(icon));
    }
    let lines = menu_lines(Some(s));
    let shape = (lines.len(), s.nodes.len());
    if let Some(state) = app.try_state::<Mutex<Lines>>() {
        let shown = state.lock().unwrap_or_else(|p| p.into_inner());
        if shown.shape == shape {
            for (item, line) in shown.items.iter().zip(&lines) {
                if item.text().ok().as_deref() != Some(line.as_str()) {
                    let _ = item.set_text(line);
                }
            }
            return;
        }
    }
    if let Ok(menu) = menu_of(app, Some(s)) {
        let _ = tray.set_menu(Some(menu));
    }
}

/// The platform could not be looked at at all (the inventory is unreadable).
pub fn show_error(app: &AppHandle, e: &UiError) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(format!("Twofold: {}", e.message)));
        if let Some(icon) = badged(app, Some(Health::Down)) {
            let _ = tray.set_icon(Some(icon));
        }
    }
}

/// The menu's lines, for a look at the platform (or none yet). Kept apart from the menu itself
/// so that what the tray says can be read without a tray host.
pub fn menu_lines(s: Option<&PlatformStatus>) -> Vec<String> {
    let Some(s) = s else {
        return vec!["Twofold: looking at the platform…".into()];
    };
    let mut lines = vec![format!("Twofold: {}", s.headline)];
    for n in &s.nodes {
        let mark = match n.state {
            NodeState::Up => "●",
            NodeState::Degraded => "◐",
            NodeState::Down => "○",
        };
        let usage = n
            .usage
            .as_ref()
            .map(|u| {
                let cpu = u
                    .cpu_percent
                    .map_or(String::new(), |c| format!(", CPU {c:.0}%"));
                format!(
                    "{cpu}, memory {:.1} of {:.1} GiB",
                    u.mem_used_mib as f64 / 1024.0,
                    u.mem_total_mib as f64 / 1024.0
                )
            })
            .unwrap_or_default();
        lines.push(format!(
            "{mark} {} ({}): {}{usage}",
            n.name,
            n.role.as_str(),
            n.state.as_str()
        ));
    }
    for r in &s.rules {
        let mark = match r.state {
            RuleState::Ok => "✓",
            RuleState::Warn => "!",
            RuleState::Missing => "✗",
        };
        lines.push(format!("{mark} {}", r.title));
    }
    lines
}

fn menu_of(app: &AppHandle, s: Option<&PlatformStatus>) -> tauri::Result<Menu<Wry>> {
    let lines = menu_lines(s);
    let menu = Menu::new(app)?;
    let nodes = s.map_or(0, |s| s.nodes.len());
    let mut items = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        // Information, not actions: shown greyed.
        let item = MenuItem::with_id(app, format!("info-{i}"), line, false, None::<&str>)?;
        menu.append(&item)?;
        items.push(item);
        if i == 0 || i == nodes {
            menu.append(&PredefinedMenuItem::separator(app)?)?;
        }
    }
    let shown = Lines {
        items,
        shape: (lines.len(), nodes),
    };
    match app.try_state::<Mutex<Lines>>() {
        Some(state) => *state.lock().unwrap_or_else(|p| p.into_inner()) = shown,
        None => {
            app.manage(Mutex::new(shown));
        }
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        "open",
        "Open dashboard",
        true,
        None::<&str>,
    )?)?;
    let logs = app
        .try_state::<lifecycle::Lifecycle>()
        .is_some_and(|l| l.log_dir().is_some());
    if logs {
        menu.append(&MenuItem::with_id(
            app,
            "logs",
            "Open logs",
            true,
            None::<&str>,
        )?)?;
    }
    menu.append(&MenuItem::with_id(
        app,
        "quit",
        "Quit Twofold",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

/// The app's icon with a round badge in the health's colour in its lower right corner.
fn badged(app: &AppHandle, health: Option<Health>) -> Option<Image<'static>> {
    let base = app.default_window_icon()?;
    let (w, h) = (base.width(), base.height());
    let mut rgba = base.rgba().to_vec();
    let colour: [u8; 3] = match health {
        None | Some(Health::Unconfigured) => [0x75, 0x75, 0x75],
        Some(Health::Healthy) => [0x2e, 0x7d, 0x32],
        Some(Health::Degraded) => [0xf9, 0xa8, 0x25],
        Some(Health::Down) => [0xc6, 0x28, 0x28],
    };
    paint_badge(&mut rgba, w, h, colour);
    Some(Image::new_owned(rgba, w, h))
}

/// A filled circle with a white ring, a third of the icon wide, in the lower right corner.
fn paint_badge(rgba: &mut [u8], w: u32, h: u32, colour: [u8; 3]) {
    let r = f64::from(w.min(h)) / 6.0;
    let (cx, cy) = (f64::from(w) - r - 1.0, f64::from(h) - r - 1.0);
    for y in 0..h {
        for x in 0..w {
            let d = ((f64::from(x) + 0.5 - cx).powi(2) + (f64::from(y) + 0.5 - cy).powi(2)).sqrt();
            let px = match d {
                d if d <= r * 0.8 => [colour[0], colour[1], colour[2], 255],
                d if d <= r => [255, 255, 255, 255],
                _ => continue,
            };
            let i = ((y * w + x) * 4) as usize;
            if let Some(p) = rgba.get_mut(i..i + 4) {
                p.copy_from_slice(&px);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold::status::assemble;

    #[test]
    fn the_badge_is_drawn_inside_the_icon() {
        let (w, h) = (32u32, 32u32);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        paint_badge(&mut rgba, w, h, [0xc6, 0x28, 0x28]);
        let at = |x: u32, y: u32| &rgba[((y * w + x) * 4) as usize..((y * w + x) * 4 + 4) as usize];
        assert_eq!(at(26, 26), &[0xc6, 0x28, 0x28, 255], "badge centre");
        assert_eq!(at(2, 2), &[0, 0, 0, 0], "the rest of the icon is untouched");
    }

    #[test]
    fn the_menu_names_the_state_and_every_rule() {
        assert_eq!(menu_lines(None).len(), 1);
        let s = assemble(1, Vec::new(), Vec::new(), &[], None);
        let lines = menu_lines(Some(&s));
        assert_eq!(lines[0], "Twofold: Down");
        assert!(
            lines.iter().any(|l| l.contains("Copies offsite")),
            "{lines:?}"
        );
    }
}
