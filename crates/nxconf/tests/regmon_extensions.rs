//! regmon's im_regmon extensions for images and views: `64BitView BOTH`,
//! `WindowsImage`, `User`, `ExcludeClasses`, as the parser checks them.

use nxconf::*;

/// An im_regmon input with `directives`, parsed.
fn input(directives: &str) -> Result<ImRegmon, String> {
    let text = format!("<Input a>\nModule im_regmon\nRegValue 'HKLM\\x'\n{directives}</Input>\n");
    parse_str(&text, "t.conf")
        .map(|c| c.module("a").unwrap().im_regmon().unwrap().clone())
        .map_err(|e| e.to_string())
}

#[test]
fn view_64bit_takes_true_false_or_both() {
    let rm = input("64BitView BOTH\n").unwrap();
    assert!(rm.both_views && rm.view_64bit);
    let rm = input("64BitView both\n").unwrap();
    assert!(rm.both_views);
    let rm = input("64BitView FALSE\n").unwrap();
    assert!(!rm.both_views && !rm.view_64bit);
    let rm = input("").unwrap();
    assert!(!rm.both_views && rm.view_64bit);
    let e = input("64BitView SOMETIMES\n").unwrap_err();
    assert!(
        e.contains("t.conf:4") && e.contains("64BitView takes TRUE, FALSE or BOTH"),
        "{e}"
    );
}

#[test]
fn windows_image_user_and_exclude_classes() {
    let rm = input("WindowsImage '/mnt/c'\nUser 'alice'\nExcludeClasses TRUE\n").unwrap();
    let image = rm.windows_image.unwrap();
    assert_eq!((image.pattern.as_str(), image.location.line), ("/mnt/c", 4));
    assert_eq!(rm.user.unwrap().pattern, "alice");
    assert!(rm.exclude_classes);
    let rm = input("").unwrap();
    assert!(rm.windows_image.is_none() && rm.user.is_none() && !rm.exclude_classes);

    let e = input("WindowsImage ''\n").unwrap_err();
    assert!(
        e.contains("t.conf:4") && e.contains("WindowsImage needs the folder of a Windows volume"),
        "{e}"
    );
    let e = input("User ' '\n").unwrap_err();
    assert!(e.contains("User needs a SID or a profile name"), "{e}");
    let e = input("User 'CORP\\alice'\n").unwrap_err();
    assert!(
        e.contains("t.conf:4") && e.contains("give a SID or a profile folder name"),
        "{e}"
    );
    let e = input("WindowsImage '/mnt/c'\nWindowsImage '/mnt/d'\n").unwrap_err();
    assert!(e.contains("t.conf:5") && e.contains("WindowsImage"), "{e}");
    let e = input("ExcludeClasses maybe\n").unwrap_err();
    assert!(
        e.contains("t.conf:4") && e.contains("ExcludeClasses"),
        "{e}"
    );
}
