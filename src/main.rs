fn main() {
    std::process::exit(poolsync::run());
}
