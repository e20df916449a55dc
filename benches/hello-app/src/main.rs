//! A minimal Tauri v2 app: one window whose page calls `ready` once it has rendered. With
//! `HELLO_READY=/path` set, `ready` writes that file and the app exits (the cold-start probe of
//! benches/desktop.sh); without it the app stays open (the idle-memory probe).

#[tauri::command]
fn ready(app: tauri::AppHandle) {
    if let Some(path) = std::env::var_os("HELLO_READY") {
        let _ = std::fs::write(path, b"ready\n");
        app.exit(0);
    }
}

fn main() {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![ready])
        .run(tauri::generate_context!())
        .expect("error while running the hello app");
}
