fn main() {
    let t = r#"{"id":"0a0a0a0a","id":"0b0b0b0b","image":"/x","status":"stopped","started_at":"2025-01-01T00:00:00Z"}"#;
    println!("{:?}", serde_json::from_str::<vmcontainer::Container>(t).map(|c| c.id));
    let t = r#"{"id":"0a0a0a0a","image":"/x","status":"stopped","started_at":"2025-01-01T00:00:00Z","zz":1,"zz":2}"#;
    println!("{:?}", serde_json::from_str::<vmcontainer::Container>(t).map(|c| c.extra));
}
