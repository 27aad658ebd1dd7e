// Builds the kwok fake-node controller for Modelport's end-to-end test
// cluster. See tools/k8s/build.sh.
module modelport.io/tools/k8s/kwok

go 1.26.0

require sigs.k8s.io/kwok v0.8.0

tool sigs.k8s.io/kwok/cmd/kwok
