// Builds helm for Modelport's end-to-end tests. See tools/k8s/build.sh.
module modelport.io/tools/k8s/helm

go 1.26.0

require helm.sh/helm/v3 v3.22.0

tool helm.sh/helm/v3/cmd/helm
