pub async fn run(_args: crate::config::BenchArgs) -> anyhow::Result<()> {
    todo!()
}
