package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The files under deploy/ can't be run here (no docker, no kubectl), so
// this checks what can be checked: the manifests parse, refer to each other
// consistently, and configure roomd with settings that exist and validate.

// k8sObject is the part of a manifest the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Resources  []string          `yaml:"resources"` // kustomization
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		// Service
		ClusterIP                string    `yaml:"clusterIP"`
		PublishNotReadyAddresses bool      `yaml:"publishNotReadyAddresses"`
		Ports                    []k8sPort `yaml:"ports"`
		// StatefulSet, PodDisruptionBudget
		Replicas            int    `yaml:"replicas"`
		PodManagementPolicy string `yaml:"podManagementPolicy"`
		ServiceName         string `yaml:"serviceName"`
		MaxUnavailable      any    `yaml:"maxUnavailable"`
		Template            struct {
			Spec struct {
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// Raw selector: a Service's map, or a matchLabels.
		RawSelector yaml.Node `yaml:"selector"`
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
	} `yaml:"spec"`
}

type k8sPort struct {
	Name          string `yaml:"name"`
	Port          int    `yaml:"port"`
	ContainerPort int    `yaml:"containerPort"`
	TargetPort    any    `yaml:"targetPort"`
	Protocol      string `yaml:"protocol"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Image string    `yaml:"image"`
	Args  []string  `yaml:"args"`
	Ports []k8sPort `yaml:"ports"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
}

// selector returns a Service's selector or a matchLabels selector.
func (o *k8sObject) selector() map[string]string {
	var s struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := o.Spec.RawSelector.Decode(&s); err == nil && s.MatchLabels != nil {
		return s.MatchLabels
	}
	var m map[string]string
	_ = o.Spec.RawSelector.Decode(&m)
	return m
}

func loadManifests(t *testing.T) (map[string][]*k8sObject, []string) {
	t.Helper()
	dir := filepath.Join("..", "..", "deploy", "k8s")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	byKind := map[string][]*k8sObject{}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(false)
		for i := 0; ; i++ {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i+1, err)
			}
			if o.Kind == "" {
				t.Fatalf("%s: document %d has no kind", f, i+1)
			}
			byKind[o.Kind] = append(byKind[o.Kind], &o)
		}
	}
	return byKind, names
}

func TestKubernetesManifests(t *testing.T) {
	byKind, files := loadManifests(t)
	one := func(kind string) *k8sObject {
		t.Helper()
		if len(byKind[kind]) != 1 {
			t.Fatalf("want one %s, got %d", kind, len(byKind[kind]))
		}
		return byKind[kind][0]
	}
	kust := one("Kustomization")
	for _, f := range files {
		if f != "kustomization.yaml" && !slices.Contains(kust.Resources, f) {
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}
	sts := one("StatefulSet")
	secret := one("Secret")
	pdb := one("PodDisruptionBudget")
	labels := sts.selector()
	if len(labels) == 0 {
		t.Fatal("the StatefulSet has no selector")
	}
	if sts.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", sts.Spec.Replicas)
	}
	if sts.Spec.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy %q, want Parallel: the pods bootstrap the cluster together (cluster.expect)", sts.Spec.PodManagementPolicy)
	}
	if !maps.Equal(pdb.selector(), labels) || pdb.Spec.MaxUnavailable != 1 {
		t.Errorf("PodDisruptionBudget: selector %v, maxUnavailable %v; want the StatefulSet's pods, 1", pdb.selector(), pdb.Spec.MaxUnavailable)
	}

	// Services: a headless one for --join, a regular one for clients.
	var headless, clients *k8sObject
	for _, s := range byKind["Service"] {
		if !maps.Equal(s.selector(), labels) {
			t.Errorf("Service %s does not select the StatefulSet's pods", s.Metadata.Name)
		}
		if s.Spec.ClusterIP == "None" {
			headless = s
		} else {
			clients = s
		}
	}
	if headless == nil || clients == nil {
		t.Fatal("want a headless Service and a client Service")
	}
	if sts.Spec.ServiceName != headless.Metadata.Name {
		t.Errorf("serviceName %q, want the headless Service %q", sts.Spec.ServiceName, headless.Metadata.Name)
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Error("the headless Service must publish not-ready pods, so a starting node finds the others")
	}

	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]k8sPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	for name, path := range map[string]string{"readiness": c.ReadinessProbe.HTTPGet.Path, "liveness": c.LivenessProbe.HTTPGet.Path} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		if path != want {
			t.Errorf("%s probe on %q, want %s", name, path, want)
		}
	}
	if p := fmt.Sprint(c.ReadinessProbe.HTTPGet.Port); ports[p].ContainerPort == 0 {
		t.Errorf("readiness probe port %q is not a container port", p)
	}
	for _, sp := range append(headless.Spec.Ports, clients.Spec.Ports...) {
		if tp := fmt.Sprint(sp.TargetPort); ports[tp].ContainerPort == 0 {
			t.Errorf("Service port %s targets %q, which is not a container port", sp.Name, tp)
		}
	}

	// The environment configures roomd with settings that exist, and
	// validates once Kubernetes has filled it in.
	vars := map[string]string{}
	fieldRefs := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom.FieldRef.FieldPath != "":
			fieldRefs[e.Name] = e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom.SecretKeyRef.Key != "":
			if e.ValueFrom.SecretKeyRef.Name != secret.Metadata.Name {
				t.Errorf("%s: secret %q, want %q", e.Name, e.ValueFrom.SecretKeyRef.Name, secret.Metadata.Name)
			}
			if _, ok := secret.StringData[e.ValueFrom.SecretKeyRef.Key]; !ok {
				t.Errorf("%s: the Secret has no key %q", e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			// A generated value, as the Secret's comment says to make.
			vars[e.Name] = map[string]string{
				"cluster-key": "c2l4dGVlbi1ieXRlLWtleSEhc2l4dGVlbi1ieXRlLWs=",
			}[e.ValueFrom.SecretKeyRef.Key]
			if vars[e.Name] == "" {
				vars[e.Name] = "generated-value-0123456789abcdef0123456789abcdef"
			}
		default:
			vars[e.Name] = e.Value
		}
	}
	if fieldRefs["POD_IP"] != "status.podIP" {
		t.Errorf("POD_IP comes from %q, want the downward API's status.podIP", fieldRefs["POD_IP"])
	}
	expand := regexp.MustCompile(`\$\(([A-Z_]+)\)`)
	downward := map[string]string{"POD_IP": "10.1.2.3", "POD_NAMESPACE": "default"}
	for name, v := range vars {
		vars[name] = expand.ReplaceAllStringFunc(v, func(m string) string { return downward[m[2:len(m)-1]] })
		if !strings.HasPrefix(name, "ROOMD_") {
			t.Errorf("variable %s is not roomd's", name)
		} else if name != "ROOMD_CONFIG" && envSetting(name) == nil {
			t.Errorf("variable %s is not a setting's", name)
		}
	}
	for _, a := range c.Args {
		if f, ok := strings.CutPrefix(a, "--"); ok {
			if f, _, _ = strings.Cut(f, "="); settingByFlag(f) == nil && f != "config" {
				t.Errorf("argument --%s is not a setting's flag", f)
			}
		}
	}
	cfg, err := Load(Sources{Env: mapEnv(vars)})
	if err != nil {
		t.Fatalf("the StatefulSet's configuration does not load: %v", err)
	}
	if !cfg.Clustered() || cfg.Dev() || len(cfg.APIKeys) == 0 {
		t.Errorf("the StatefulSet's node is not clustered, or in dev mode, or has no API key: %+v", cfg.Cluster)
	}
	if cfg.Cluster.Expect != sts.Spec.Replicas {
		t.Errorf("cluster.expect %d, want the replicas, %d", cfg.Cluster.Expect, sts.Spec.Replicas)
	}
	if cfg.Cluster.Advertise != "10.1.2.3:7946" {
		t.Errorf("advertise %q: want the pod IP", cfg.Cluster.Advertise)
	}
	if httpAddr, err := cfg.PeerHTTPAddr(&net.TCPAddr{IP: net.IPv4zero, Port: 8080}); err != nil || httpAddr != "10.1.2.3:8080" {
		t.Errorf("peer HTTP address %q (%v), want the pod IP and the listen port", httpAddr, err)
	}
	if len(cfg.Cluster.Join) != 1 || !strings.HasPrefix(cfg.Cluster.Join[0], headless.Metadata.Name+".") {
		t.Errorf("join %v: want the headless Service's name", cfg.Cluster.Join)
	}
	_, listenPort, _ := net.SplitHostPort(cfg.Listen)
	_, gossipPort, _ := net.SplitHostPort(cfg.Cluster.Bind)
	if fmt.Sprint(ports["http"].ContainerPort) != listenPort {
		t.Errorf("container port http %d, listen port %s", ports["http"].ContainerPort, listenPort)
	}
	for _, name := range []string{"gossip-tcp", "gossip-udp"} {
		if fmt.Sprint(ports[name].ContainerPort) != gossipPort {
			t.Errorf("container port %s %d, gossip port %s", name, ports[name].ContainerPort, gossipPort)
		}
	}
	if ports["gossip-udp"].Protocol != "UDP" {
		t.Error("gossip needs UDP too")
	}
	// The grace period covers the drain delay, the drain and the
	// connections' close, each up to shutdown_grace, and the leave.
	grace := time.Duration(cfg.ShutdownGrace)
	want := 2*grace + max(time.Duration(cfg.DrainDelay), 0) + 5*time.Second
	if got := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; got < want {
		t.Errorf("terminationGracePeriodSeconds %v, want at least drain_delay + 2 × shutdown_grace + 5 s = %v", got, want)
	}
	// A placeholder secret fails loudly rather than run a known key.
	vars["ROOMD_CLUSTER_KEY"] = secret.StringData["cluster-key"]
	if _, err := Load(Sources{Env: mapEnv(vars)}); err == nil {
		t.Error("the placeholder cluster-key of secret.yaml validates: a node would start with it")
	}
}

// envSetting finds the setting a ROOMD_* variable stands for.
func envSetting(name string) *setting {
	for _, s := range settings {
		if s.flag != "" && EnvName(s.flag) == name {
			return s
		}
	}
	return nil
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	var froms []string
	for _, line := range strings.Split(df, "\n") {
		if f, ok := strings.CutPrefix(line, "FROM "); ok {
			froms = append(froms, f)
		}
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:") || !strings.Contains(froms[1], "distroless/static") {
		t.Errorf("want a Go build stage and a distroless/static run stage, got %q", froms)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/roomd", "USER nonroot", "EXPOSE 8080 7946 7946/udp", `ENTRYPOINT ["/usr/local/bin/roomd"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// Its ROOMD_* variables are settings'.
	for _, m := range regexp.MustCompile(`ROOMD_[A-Z_]+`).FindAllString(df, -1) {
		if envSetting(m) == nil {
			t.Errorf("Dockerfile sets %s, which is no setting's variable", m)
		}
	}
}
