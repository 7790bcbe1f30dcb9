# Sourced by the benchmark scripts: the two-pool deployment they all sync.
#
# pair_deployment STORE_A STORE_B [DEPLOYMENT_LINE]
#   prints a deployment of the pair a.bench.com <-> b.bench.com (a hosts the
#   CMS), with the two `store` settings given and one optional extra line in
#   [deployment] (s3.sh names its credentials file there).
pair_deployment() {
    cat <<EOF
[deployment]
name = "bench"
cms_master = "a.bench.com"
${3:+$3
}[[site]]
identity = "S1"
site_id = 1
[[site]]
identity = "S2"
site_id = 2
[[pool]]
fqdn = "a.bench.com"
site = "S1"
backup_pool = "b.bench.com"
store = "$1"
[[pool]]
fqdn = "b.bench.com"
site = "S2"
backup_pool = "a.bench.com"
store = "$2"
EOF
}
