// Builds etcd for Modelport's end-to-end test cluster. See tools/k8s/build.sh.
// Kept apart from the kube module so that MVS cannot raise the etcd client
// that kube-apiserver is compiled against.
module modelport.io/tools/k8s/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.6.16

tool go.etcd.io/etcd/server/v3
