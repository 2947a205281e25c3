package helm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "tributary"
	releaseName = "tributary"
	namespace   = "rag"
	// kubeVersion is the cluster the chart is rendered and linted for.
	kubeVersion = "v1.33.0"
)

// serviceNames are the seven services, each with its own image and binary.
func serviceNames() []string {
	return []string{"ingest", "embed", "retrieve", "generate", "moderate", "audit", "edge"}
}

// object is one rendered manifest, decoded into its typed form.
type object struct {
	source string // template file
	kind   string
	name   string
	obj    any
}

// TestChart renders the chart with each values file, lints it, decodes
// every object strictly and checks what an operator relies on.
func TestChart(t *testing.T) {
	flags := binaryFlags(t)
	cases := []struct {
		name   string
		values []string
		check  func(t *testing.T, objs []object)
	}{
		{"default", nil, checkDefault},
		{"dev", []string{filepath.Join(chartDir, "values-dev.yaml")}, checkDev},
		{"full", []string{filepath.Join("testdata", "values-full.yaml")}, checkFull},
		{"strimzi", []string{filepath.Join("examples", "values-strimzi.yaml")},
			checkExternalKafka("my-cluster-kafka-bootstrap.kafka.svc:9093", "SCRAM-SHA-512", "/etc/tributary/kafka-ca/ca.crt", "ingest", "password")},
		{"msk", []string{filepath.Join("examples", "values-msk.yaml")},
			checkExternalKafka("b-1.rag.a1b2c3.c2.kafka.eu-west-1.amazonaws.com:9096,", "SCRAM-SHA-512", "", "tributary", "ingest.password")},
		{"redpanda", []string{filepath.Join("examples", "values-redpanda.yaml")},
			checkExternalKafka("redpanda-0.redpanda.redpanda.svc:9093,", "SCRAM-SHA-256", "/etc/tributary/kafka-ca/ca.crt", "tributary", "ingest.password")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals := readValues(t, c.values...)
			lint(t, vals)
			objs := render(t, vals)
			checkCommon(t, objs, flags)
			c.check(t, objs)
		})
	}
}

// TestChartRejectsBadValues: a mistyped switch fails the render instead of
// silently leaving a secret or the audit's keys unconfigured.
func TestChartRejectsBadValues(t *testing.T) {
	for _, c := range []struct{ name, values, want string }{
		{"secrets provider", "secrets: {provider: vault}", `secrets.provider "vault" is not kubernetes or vault-agent`},
		{"vault auth", "vault: {enabled: true, auth: userpass}", `vault.auth "userpass" is not token, approle or kubernetes`},
		{"approle without role id", "vault: {enabled: true, auth: approle}", "vault.roleId is required"},
		{"no kafka", "kafka: {brokers: ''}", "kafka.brokers is required unless broker.enabled"},
		{"no qdrant", "qdrant: {addr: ''}", "qdrant.addr is required unless vectordb.enabled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vals, err := common.ReadValues([]byte(c.values))
			if err != nil {
				t.Fatal(err)
			}
			_, err = renderErr(t, vals)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("render error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// readValues merges the values files in order, as helm -f does.
func readValues(t *testing.T, files ...string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, f := range files {
		v, err := common.ReadValuesFile(f)
		if err != nil {
			t.Fatal(err)
		}
		vals = util.MergeTables(v, vals)
	}
	return vals
}

// lint runs helm lint --strict: a warning fails the test as an error does.
func lint(t *testing.T, vals map[string]any) {
	t.Helper()
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	l := action.NewLint()
	l.Strict = true
	l.Namespace = namespace
	l.KubeVersion = kv
	res := l.Run([]string{chartDir}, vals)
	for _, m := range res.Messages {
		t.Logf("lint: %s", m)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("helm lint: %v", errors.Join(res.Errors...))
	}
	if res.TotalChartsLinted != 1 {
		t.Fatalf("linted %d charts, want 1", res.TotalChartsLinted)
	}
}

func renderErr(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch, err := loader.LoadDir(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	caps := *common.DefaultCapabilities
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: releaseName, Namespace: namespace, IsInstall: true}, &caps)
	if err != nil {
		return nil, err
	}
	// Not Strict: helm install and helm template render without it.
	return engine.Render(ch, top)
}

// render renders the chart and decodes every manifest strictly.
func render(t *testing.T, vals map[string]any) []object {
	t.Helper()
	files, err := renderErr(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs []object
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") {
			continue // NOTES.txt
		}
		r := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(files[n])))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			o, err := decode(doc)
			if err != nil {
				t.Fatalf("%s: %v\n%s", n, err, doc)
			}
			o.source = n
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		t.Fatal("the chart rendered nothing")
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// decode picks the type by apiVersion and kind and decodes doc into it,
// failing on a duplicate key, an unknown field or trailing data.
func decode(doc []byte) (object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return object{}, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return object{}, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		obj = &serviceMonitor{}
	case "keda.sh/v1alpha1 ScaledObject":
		obj = &scaledObject{}
	case "keda.sh/v1alpha1 TriggerAuthentication":
		obj = &triggerAuthentication{}
	default:
		return object{}, fmt.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if dec.More() {
		return object{}, fmt.Errorf("%s: trailing data", tm.Kind)
	}
	meta := obj.(interface{ GetName() string })
	if meta.GetName() == "" {
		return object{}, fmt.Errorf("%s without a name", tm.Kind)
	}
	return object{kind: tm.Kind, name: meta.GetName(), obj: obj}, nil
}

// workload is a Deployment or StatefulSet, reduced to what the checks read.
type workload struct {
	kind, name string
	labels     map[string]string
	replicas   *int32
	pod        corev1.PodTemplateSpec
	claims     []corev1.PersistentVolumeClaim
}

func (w workload) component() string { return w.labels["app.kubernetes.io/component"] }

func workloads(objs []object) []workload {
	var ws []workload
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			ws = append(ws, workload{"Deployment", v.Name, v.Labels, v.Spec.Replicas, v.Spec.Template, nil})
		case *appsv1.StatefulSet:
			ws = append(ws, workload{"StatefulSet", v.Name, v.Labels, v.Spec.Replicas, v.Spec.Template, v.Spec.VolumeClaimTemplates})
		}
	}
	return ws
}

func byComponent(objs []object) map[string]workload {
	m := map[string]workload{}
	for _, w := range workloads(objs) {
		m[w.component()] = w
	}
	return m
}

func ofKind[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// checkCommon checks what holds for every values file.
func checkCommon(t *testing.T, objs []object, flags map[string]binaryHelp) {
	t.Helper()
	ws := byComponent(objs)
	for _, s := range serviceNames() {
		if _, ok := ws[s]; !ok {
			t.Errorf("no workload for %s", s)
		}
	}
	svcs := map[string]*corev1.Service{}
	for _, s := range ofKind[*corev1.Service](objs) {
		svcs[s.Labels["app.kubernetes.io/component"]] = s
	}
	for _, w := range workloads(objs) {
		comp := w.component()
		if _, ok := svcs[comp]; !ok {
			t.Errorf("%s %s: no Service", w.kind, w.name)
		}
		for k, v := range w.pod.Labels {
			if sel := w.labels[k]; sel != "" && sel != v {
				t.Errorf("%s %s: pod label %s=%s, workload %s", w.kind, w.name, k, v, sel)
			}
		}
		ps := w.pod.Spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
			t.Errorf("%s %s: pods may run as root", w.kind, w.name)
		}
		if len(w.pod.Spec.Containers) != 1 {
			t.Fatalf("%s %s: %d containers, want 1", w.kind, w.name, len(w.pod.Spec.Containers))
		}
		c := w.pod.Spec.Containers[0]
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container is not read-only and unprivileged", w.name)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s: missing liveness or readiness probe", w.name)
		}
		if slices.Contains(serviceNames(), comp) {
			if g := c.LivenessProbe.HTTPGet; g == nil || g.Path != "/healthz" {
				t.Errorf("%s: liveness probe is not GET /healthz", w.name)
			}
			if g := c.ReadinessProbe.HTTPGet; g == nil || g.Path != "/readyz" {
				t.Errorf("%s: readiness probe is not GET /readyz", w.name)
			}
		}
		mounts := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounts[m.Name] = true
		}
		vols := map[string]bool{}
		for _, v := range w.pod.Spec.Volumes {
			vols[v.Name] = true
		}
		for _, pvc := range w.claims {
			vols[pvc.Name] = true
		}
		for m := range mounts {
			if !vols[m] {
				t.Errorf("%s: mount %s has no volume", w.name, m)
			}
		}
		checkNoInlineSecrets(t, w.name, c)
		checkFlags(t, w.name, c, flags)
	}
	if len(ofKind[*corev1.Secret](objs)) > 0 {
		t.Error("the chart rendered a Secret: secret values belong in a Secret created outside it")
	}
}

// checkNoInlineSecrets: a credential comes from a Secret reference or a
// mounted file, never a literal in the manifest.
func checkNoInlineSecrets(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	// A variable or flag of this name holds a credential.
	secretish := regexp.MustCompile(`PASSWORD|API_KEYS?$|(^|_)TOKEN$|SECRET`)
	for _, e := range c.Env {
		if !secretish.MatchString(e.Name) || strings.HasSuffix(e.Name, "_FILE") {
			continue
		}
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("%s: %s is not from a Secret", name, e.Name)
		}
	}
	for _, a := range c.Args {
		flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if secretish.MatchString(strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))) && !strings.HasSuffix(flag, "-file") {
			t.Errorf("%s: credential in argument %q", name, a)
		}
	}
}

// checkFlags: every --flag the container is started with and every
// variable it is given is one its binary accepts (as its --help says).
func checkFlags(t *testing.T, name string, c corev1.Container, flags map[string]binaryHelp) {
	t.Helper()
	image := c.Image[strings.LastIndex(c.Image, "/")+1:]
	bin, _, _ := strings.Cut(image, ":")
	args := c.Args
	if bin == "tributary" {
		if len(args) == 0 {
			t.Errorf("%s: tributary without a subcommand", name)
			return
		}
		bin, args = "tributary "+args[0], args[1:]
	}
	help, ok := flags[bin]
	if !ok {
		t.Errorf("%s: no --help of %q to check against", name, bin)
		return
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q is not a --flag", name, a)
			continue
		}
		f, _, _ := strings.Cut(a[2:], "=")
		if !help.flags[f] {
			t.Errorf("%s: %s does not accept --%s", name, bin, f)
		}
	}
	for _, e := range c.Env {
		if otelVariables[e.Name] {
			continue // read by pkg/daemon and the OpenTelemetry SDK, not flags
		}
		if !help.mentions(e.Name) {
			t.Errorf("%s: %s reads no variable %s", name, bin, e.Name)
		}
	}
}

// otelVariables are the OpenTelemetry variables the chart sets: every
// service reads them (pkg/daemon's Tracing and the SDK), none has a flag.
var otelVariables = map[string]bool{
	"OTEL_EXPORTER_OTLP_ENDPOINT": true, "OTEL_EXPORTER_OTLP_PROTOCOL": true, "OTEL_SERVICE_NAME": true,
	"OTEL_TRACES_SAMPLER": true, "OTEL_TRACES_SAMPLER_ARG": true,
}

func checkDefault(t *testing.T, objs []object) {
	ws := byComponent(objs)
	for name, w := range ws {
		if v := envValue(w.pod.Spec.Containers[0], "OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
			t.Errorf("%s: tracing on (%q) without tracing.otlpEndpoint", name, v)
		}
	}
	for _, c := range []string{"broker", "vectordb", "inference"} {
		if _, ok := ws[c]; ok {
			t.Errorf("%s runs by default; it belongs to values-dev.yaml or inference.enabled", c)
		}
	}
	checkNetworkPolicies(t, objs, "embed", "retrieve", "generate", "moderate", "audit")
	checkGPU(t, objs)
	if n := len(ofKind[*scaledObject](objs)); n != 0 {
		t.Errorf("%d ScaledObjects with KEDA off", n)
	}
	for _, w := range workloads(objs) {
		if len(w.pod.Annotations) != 0 {
			t.Errorf("%s: annotations %v without Vault Agent", w.name, w.pod.Annotations)
		}
	}
	ingest := ws["ingest"].pod.Spec.Containers[0]
	if v := envValue(ingest, "TRIBUTARY_KAFKA_BROKERS"); v != "tributary-kafka-bootstrap.kafka.svc:9093" {
		t.Errorf("ingest's brokers %q, want the external cluster", v)
	}
	if v := envValue(ingest, "TRIBUTARY_KAFKA_PASSWORD_FILE"); v != "/etc/tributary/kafka/kafka-password" {
		t.Errorf("ingest's Kafka password file %q", v)
	}
	checkPasswordItem(t, ws["ingest"], "tributary", "ingest.password")
}

func checkDev(t *testing.T, objs []object) {
	ws := byComponent(objs)
	for _, c := range []string{"broker", "vectordb", "ingest", "audit"} {
		w, ok := ws[c]
		if !ok {
			t.Fatalf("no %s", c)
		}
		if w.kind != "StatefulSet" || len(w.claims) != 1 || w.claims[0].Name != "data" {
			t.Errorf("%s: %s with claims %v, want a StatefulSet with a data volume claim", c, w.kind, w.claims)
		}
	}
	for _, s := range serviceNames() {
		c := ws[s].pod.Spec.Containers[0]
		if v := envValue(c, "TRIBUTARY_KAFKA_BROKERS"); v != "tributary-broker:9092" {
			t.Errorf("%s: brokers %q, want the in-cluster broker", s, v)
		}
		if v := envValue(c, "TRIBUTARY_KAFKA_USERNAME"); v != s {
			t.Errorf("%s: Kafka principal %q, want its own", s, v)
		}
		if v := envValue(c, "TRIBUTARY_KAFKA_TLS"); v != "" {
			t.Errorf("%s: TLS %q to the embedded broker", s, v)
		}
	}
	retrieve := ws["retrieve"].pod.Spec.Containers[0]
	if v := envValue(retrieve, "TRIBUTARY_QDRANT_ADDR"); v != "tributary-vectordb:6334" {
		t.Errorf("retrieve's store %q", v)
	}
	broker := ws["broker"].pod.Spec.Containers[0]
	if !slices.Contains(broker.Args, "--users=/etc/tributary/broker/users") {
		t.Errorf("broker args %v: no SASL users", broker.Args)
	}
	checkNetworkPolicies(t, objs, "embed", "retrieve", "generate", "moderate", "audit", "broker", "vectordb")
	checkGPU(t, objs)
}

func checkFull(t *testing.T, objs []object) {
	ws := byComponent(objs)
	for _, s := range []string{"ingest", "embed", "retrieve", "generate", "moderate", "audit", "edge"} {
		c := ws[s].pod.Spec.Containers[0]
		if envValue(c, "OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-collector.monitoring:4318" || envValue(c, "OTEL_SERVICE_NAME") != "tributary-"+s ||
			envValue(c, "OTEL_TRACES_SAMPLER_ARG") != "0.25" {
			t.Errorf("%s: tracing variables %v", s, c.Env)
		}
	}
	checkNetworkPolicies(t, objs, "embed", "retrieve", "generate", "moderate", "audit", "inference")
	checkGPU(t, objs, "embed", "generate", "inference")

	// Vault Agent renders the Kafka password; the audit logs in to Vault
	// with AppRole.
	for _, s := range serviceNames() {
		w := ws[s]
		a := w.pod.Annotations
		if a["vault.hashicorp.com/agent-inject"] != "true" || a["vault.hashicorp.com/role"] != "acme-tributary" {
			t.Errorf("%s: Vault Agent annotations %v", s, a)
		}
		path := "secret/data/tributary/kafka/" + s
		if a["vault.hashicorp.com/agent-inject-secret-kafka-password"] != path ||
			!strings.Contains(a["vault.hashicorp.com/agent-inject-template-kafka-password"], `with secret "`+path+`"`) {
			t.Errorf("%s: Kafka password not injected from %s: %v", s, path, a)
		}
		c := w.pod.Spec.Containers[0]
		if v := envValue(c, "TRIBUTARY_KAFKA_PASSWORD_FILE"); v != "/vault/secrets/kafka-password" {
			t.Errorf("%s: Kafka password file %q", s, v)
		}
		if v := envValue(c, "TRIBUTARY_KAFKA_TLS_CA"); v != "/etc/tributary/kafka-ca/ca.crt" {
			t.Errorf("%s: Kafka CA %q", s, v)
		}
		if v := envValue(c, "TRIBUTARY_KAFKA_SASL_MECHANISM"); v != "SCRAM-SHA-512" {
			t.Errorf("%s: SASL mechanism %q", s, v)
		}
		if !slices.Contains(w.pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: "regcred"}) {
			t.Errorf("%s: no image pull secret", s)
		}
	}
	if v := envValue(ws["embed"].pod.Spec.Containers[0], "TRIBUTARY_KAFKA_USERNAME"); v != "acme-embed" {
		t.Errorf("embed's principal %q, want acme-embed", v)
	}
	audit := ws["audit"].pod.Spec.Containers[0]
	for k, want := range map[string]string{
		"TRIBUTARY_VAULT_AUTH":           "approle",
		"TRIBUTARY_VAULT_ADDR":           "https://vault.example.com:8200",
		"TRIBUTARY_VAULT_SECRET_ID_FILE": "/etc/tributary/vault-approle/secret-id",
		"TRIBUTARY_VAULT_CACERT":         "/etc/tributary/vault-ca/ca.crt",
	} {
		if v := envValue(audit, k); v != want {
			t.Errorf("audit: %s=%q, want %q", k, v, want)
		}
	}
	retrieve := ws["retrieve"].pod.Spec.Containers[0]
	if envValue(retrieve, "TRIBUTARY_QDRANT_TLS") != "true" || envValue(retrieve, "TRIBUTARY_QDRANT_TLS_CA") == "" {
		t.Error("retrieve does not reach Qdrant over TLS")
	}
	generate := ws["generate"].pod.Spec.Containers[0]
	if v := envValue(generate, "TRIBUTARY_INFERENCE_URL"); v != "http://tributary-inference:8080/v1" {
		t.Errorf("generate's inference URL %q", v)
	}

	// KEDA scales the four consumers on lag; their Deployments leave the
	// replica count to it.
	scaled := map[string]*scaledObject{}
	for _, so := range ofKind[*scaledObject](objs) {
		scaled[so.Labels["app.kubernetes.io/component"]] = so
	}
	for _, s := range []string{"embed", "retrieve", "generate", "moderate"} {
		so, ok := scaled[s]
		if !ok {
			t.Errorf("%s: no ScaledObject", s)
			continue
		}
		if ws[s].replicas != nil {
			t.Errorf("%s: replicas %d fixed beside its ScaledObject", s, *ws[s].replicas)
		}
		if so.Spec.ScaleTargetRef.Name != ws[s].name || so.Spec.ScaleTargetRef.Kind != ws[s].kind {
			t.Errorf("%s: ScaledObject targets %+v", s, so.Spec.ScaleTargetRef)
		}
		if len(so.Spec.Triggers) == 0 {
			t.Errorf("%s: no triggers", s)
		}
		for _, tr := range so.Spec.Triggers {
			if tr.Type != "kafka" || tr.Metadata["lagThreshold"] != "100" || tr.Metadata["sasl"] != "scram_sha512" ||
				tr.Metadata["tls"] != "enable" || !strings.HasPrefix(tr.Metadata["topic"], "acme.") || tr.AuthenticationRef == nil {
				t.Errorf("%s: trigger %+v", s, tr)
			}
			for k := range tr.Metadata {
				if !kedaKafkaMetadata()[k] {
					t.Errorf("%s: KEDA's kafka scaler has no metadata %q", s, k)
				}
			}
		}
	}
	if len(scaled) != 4 {
		t.Errorf("ScaledObjects for %v, want the four consumers", keys(scaled))
	}
	for _, ta := range ofKind[*triggerAuthentication](objs) {
		params := map[string]bool{}
		for _, r := range ta.Spec.SecretTargetRef {
			params[r.Parameter] = true
		}
		for _, r := range ta.Spec.Env {
			params[r.Parameter] = true
		}
		for _, p := range []string{"username", "password", "ca", "cert", "key"} {
			if !params[p] {
				t.Errorf("TriggerAuthentication %s: no %s", ta.Name, p)
			}
		}
	}

	// The ServiceMonitor selects every service's Service.
	sms := ofKind[*serviceMonitor](objs)
	if len(sms) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(sms))
	}
	sel, err := metav1.LabelSelectorAsSelector(&sms[0].Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	selected := map[string]bool{}
	for _, svc := range ofKind[*corev1.Service](objs) {
		if sel.Matches(labels.Set(svc.Labels)) {
			selected[svc.Labels["app.kubernetes.io/component"]] = true
		}
	}
	for _, s := range serviceNames() {
		if !selected[s] {
			t.Errorf("the ServiceMonitor does not scrape %s", s)
		}
	}
	if sms[0].Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v", sms[0].Labels)
	}
	if n := len(ofKind[*policyv1.PodDisruptionBudget](objs)); n != len(workloads(objs)) {
		t.Errorf("%d PodDisruptionBudgets for %d workloads", n, len(workloads(objs)))
	}
}

// checkExternalKafka checks an example's Kafka settings: every service
// gets the bootstrap list (starting with brokers), the SASL mechanism, TLS
// (with the CA file ca, if any), and ingest its password from the Secret
// and key named.
func checkExternalKafka(brokers, mechanism, ca, secret, key string) func(*testing.T, []object) {
	return func(t *testing.T, objs []object) {
		ws := byComponent(objs)
		for _, s := range serviceNames() {
			c := ws[s].pod.Spec.Containers[0]
			if v := envValue(c, "TRIBUTARY_KAFKA_BROKERS"); !strings.HasPrefix(v, brokers) {
				t.Errorf("%s: brokers %q, want %q…", s, v, brokers)
			}
			if v := envValue(c, "TRIBUTARY_KAFKA_SASL_MECHANISM"); v != mechanism {
				t.Errorf("%s: SASL mechanism %q, want %s", s, v, mechanism)
			}
			if envValue(c, "TRIBUTARY_KAFKA_TLS") != "true" || envValue(c, "TRIBUTARY_KAFKA_TLS_CA") != ca {
				t.Errorf("%s: TLS %q with CA %q, want CA %q", s, envValue(c, "TRIBUTARY_KAFKA_TLS"), envValue(c, "TRIBUTARY_KAFKA_TLS_CA"), ca)
			}
		}
		checkPasswordItem(t, ws["ingest"], secret, key)
		checkNetworkPolicies(t, objs, "embed", "retrieve", "generate", "moderate", "audit")
	}
}

// checkPasswordItem: the service's pod mounts only its own Kafka password.
func checkPasswordItem(t *testing.T, w workload, secret, key string) {
	t.Helper()
	for _, v := range w.pod.Spec.Volumes {
		if v.Name == "kafka-password" {
			if v.Secret == nil || v.Secret.SecretName != secret || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != key {
				t.Errorf("%s: kafka-password volume %+v, want only the key %s of %s", w.name, v.Secret, key, secret)
			}
			return
		}
	}
	t.Errorf("%s: no kafka-password volume", w.name)
}

// checkNetworkPolicies: exactly the internal components have a policy
// (edge and ingest take outside traffic), and the audit admits export
// clients only by label.
func checkNetworkPolicies(t *testing.T, objs []object, internal ...string) {
	t.Helper()
	var got []string
	for _, np := range ofKind[*networkingv1.NetworkPolicy](objs) {
		comp := np.Labels["app.kubernetes.io/component"]
		got = append(got, comp)
		if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != comp {
			t.Errorf("NetworkPolicy %s selects %v", np.Name, np.Spec.PodSelector.MatchLabels)
		}
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("NetworkPolicy %s: policy types %v", np.Name, np.Spec.PolicyTypes)
		}
		for _, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s admits everyone", np.Name)
			}
			for _, peer := range rule.From {
				if peer.IPBlock != nil || (peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels) == 0 && len(peer.NamespaceSelector.MatchExpressions) == 0) {
					t.Errorf("NetworkPolicy %s admits a whole address range or every namespace", np.Name)
				}
			}
		}
		if comp == "audit" {
			var labelled bool
			for _, rule := range np.Spec.Ingress {
				for _, peer := range rule.From {
					for _, s := range []*metav1.LabelSelector{peer.NamespaceSelector, peer.PodSelector} {
						if s != nil && s.MatchLabels["tributary.io/audit-export"] == "true" {
							labelled = true
						}
					}
				}
			}
			if !labelled {
				t.Error("the audit's NetworkPolicy does not admit the labelled export clients")
			}
		}
	}
	slices.Sort(got)
	want := slices.Clone(internal)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("NetworkPolicies for %v, want %v", got, want)
	}
}

// checkGPU: exactly the named components ask for a GPU, and those are
// scheduled on GPU nodes.
func checkGPU(t *testing.T, objs []object, withGPU ...string) {
	t.Helper()
	for _, w := range workloads(objs) {
		c := w.pod.Spec.Containers[0]
		q, has := c.Resources.Limits["nvidia.com/gpu"]
		want := slices.Contains(withGPU, w.component())
		if has != want {
			t.Errorf("%s: GPU limit %v, want %v", w.name, has, want)
		}
		if !want {
			continue
		}
		if q.Value() < 1 {
			t.Errorf("%s: GPU limit %s", w.name, q.String())
		}
		if w.pod.Spec.NodeSelector["nvidia.com/gpu.present"] != "true" {
			t.Errorf("%s: not scheduled on GPU nodes: %v", w.name, w.pod.Spec.NodeSelector)
		}
		if !slices.ContainsFunc(w.pod.Spec.Tolerations, func(tol corev1.Toleration) bool { return tol.Key == "nvidia.com/gpu" }) {
			t.Errorf("%s: does not tolerate the GPU taint", w.name)
		}
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// binaryHelp is what a binary's --help lists.
type binaryHelp struct {
	flags map[string]bool
	text  string
}

// mentions reports whether the help names the variable as a whole word.
func (h binaryHelp) mentions(name string) bool {
	return regexp.MustCompile(`(^|[^A-Z0-9_])` + regexp.QuoteMeta(name) + `($|[^A-Z0-9_])`).MatchString(h.text)
}

// binaryFlags builds the services and the tributary CLI from this
// workspace and reads the flags each accepts from its --help, so the chart
// cannot pass a flag or variable that a binary has lost or never had.
func binaryFlags(t *testing.T) map[string]binaryHelp {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to build the binaries whose flags the chart uses: %v", err)
	}
	dir := t.TempDir()
	pkgs := []string{"../../cmd/tributary"}
	for _, s := range serviceNames() {
		pkgs = append(pkgs, "../../services/"+s+"/cmd/"+s)
	}
	// No symbol tables: linking eight binaries is most of this test's time.
	build := exec.Command(gobin, append([]string{"build", "-ldflags=-s -w", "-o", dir + string(os.PathSeparator)}, pkgs...)...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	helps := map[string]binaryHelp{}
	// The flag package's usage lists each flag as "  -name".
	helpFlag := regexp.MustCompile(`(?m)^  -(\S+)`)
	run := func(name string, args ...string) {
		bin := filepath.Join(dir, strings.Fields(name)[0])
		// --help exits 0 or 2 depending on the binary; only the text counts.
		out, _ := exec.Command(bin, append(args, "--help")...).CombinedOutput()
		h := binaryHelp{flags: map[string]bool{}, text: string(out)}
		for _, m := range helpFlag.FindAllStringSubmatch(h.text, -1) {
			h.flags[m[1]] = true
		}
		if len(h.flags) == 0 {
			t.Fatalf("%s --help lists no flags:\n%s", name, out)
		}
		helps[name] = h
	}
	for _, s := range serviceNames() {
		run(s)
	}
	for _, sub := range []string{"broker", "vectordb", "inference"} {
		run("tributary "+sub, sub)
	}
	return helps
}

// The custom resources have no types in k8s.io/api. These structs hold the
// fields of their published schemas (Prometheus Operator's
// monitoring.coreos.com/v1 ServiceMonitor, KEDA's keda.sh/v1alpha1
// ScaledObject and TriggerAuthentication) that a chart may set, so a
// misspelt or misplaced field fails the strict decode as it would fail the
// API server's schema validation.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		TargetLabels      []string             `json:"targetLabels,omitempty"`
		PodTargetLabels   []string             `json:"podTargetLabels,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		SampleLimit *uint64 `json:"sampleLimit,omitempty"`
		Endpoints   []struct {
			Port          string              `json:"port,omitempty"`
			TargetPort    *intstr.IntOrString `json:"targetPort,omitempty"`
			Path          string              `json:"path,omitempty"`
			Scheme        string              `json:"scheme,omitempty"`
			Params        map[string][]string `json:"params,omitempty"`
			Interval      string              `json:"interval,omitempty"`
			ScrapeTimeout string              `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool                `json:"honorLabels,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion             string `json:"apiVersion,omitempty"`
			Kind                   string `json:"kind,omitempty"`
			Name                   string `json:"name"`
			EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval  *int32 `json:"pollingInterval,omitempty"`
		InitialCooldown  *int32 `json:"initialCooldownPeriod,omitempty"`
		CooldownPeriod   *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount  *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount  *int32 `json:"maxReplicaCount,omitempty"`
		Triggers         []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			MetricType        string            `json:"metricType,omitempty"`
			UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

type triggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef,omitempty"`
		Env []struct {
			Parameter     string `json:"parameter"`
			Name          string `json:"name"`
			ContainerName string `json:"containerName,omitempty"`
		} `json:"env,omitempty"`
	} `json:"spec"`
}

// kedaKafkaMetadata are the metadata of KEDA's kafka scaler (its
// documented parameter list).
func kedaKafkaMetadata() map[string]bool {
	return map[string]bool{
		"bootstrapServers": true, "consumerGroup": true, "topic": true, "lagThreshold": true,
		"activationLagThreshold": true, "offsetResetPolicy": true, "allowIdleConsumers": true,
		"scaleToZeroOnInvalidOffset": true, "excludePersistentLag": true, "limitToPartitionsWithLag": true,
		"partitionLimitation": true, "version": true, "sasl": true, "tls": true, "unsafeSsl": true,
	}
}
