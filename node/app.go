package node

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/detect/heartbeat"
	"github.com/vigil-iot/vigil/detect/ids"
	"github.com/vigil-iot/vigil/detect/newplace"
	"github.com/vigil-iot/vigil/detect/reload"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/detect/threshold"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/feeds/catalog"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/devmap"
	"github.com/vigil-iot/vigil/ingest/httpin"
	ingestmqtt "github.com/vigil-iot/vigil/ingest/mqtt"
	"github.com/vigil-iot/vigil/inventory"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/remediate"
	"github.com/vigil-iot/vigil/rules"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/update/repo"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web"
)

// Consumer groups on the bus: each sees every event.
const (
	groupStore     = "store"
	groupDetect    = "detect"
	groupInventory = "inventory"
)

// Node is one running Vigil node: every stage wired together. Open builds
// it from a Config, Start runs it, Shutdown or Close ends it. Several nodes
// may run in one process (each has its own metrics registry), alone or as
// a cluster on one NATS and one PostgreSQL.
type Node struct {
	cfg         Config
	log         *slog.Logger
	registry    *prometheus.Registry
	store       serverStore
	bus         *natsbus.Bus
	tokens      *auth.StoreTokens
	devmap      *devmap.Mapper // events of monitors and logs to inventory devices
	ca          *pki.CA
	detect      *detect.Stage
	inventory   *inventory.Stage
	mqttIn      *ingestmqtt.Source
	intel       *catalog.Catalog
	vuln        *scan.DB
	vulnAlerts  *alertPublisher
	enrollFiles enroll.Files
	updateKey   ed25519.PrivateKey // signs update artifacts (updateserve.go)
	remediate   *remediate.Engine  // update plans (updateserve.go)
	repos       *repo.Fetcher      // update repositories (updateserve.go)
	enroll      *enroll.Handler
	rules       *reload.Manager
	alerts      *alert.Stage
	exceptions  *alert.Excepter // ctlexceptions.go
	incident    *incident.Correlator
	respond     *responder
	auditKey    []byte       // seals the audit trail (pki/audit.key)
	trail       *audit.Trail // anchors and verifies the audit trail
	web         *web.Server
	identities  *identities
	baseline    *baselineState // nil when baseline.enabled is false
	cluster     *clusterState  // nil unless cluster.enabled (clusterwire.go)
	hunt        *huntState     // hunt.go; made once by huntState
	huntOnce    sync.Once

	// url is the API's base URL once listening; adminToken is the
	// bootstrap admin token, set only on the first start of a data dir.
	url        string
	adminToken string

	http    *web.HTTPServer
	tlsCert tls.Certificate
	stages  *errgroup.Group
	cancel  context.CancelFunc
	// done is closed when the stages have ended (Start made it); err is
	// then their first failure.
	done chan struct{}
	err  error
	// closeOnce makes Close and Shutdown release the store and bus once.
	closeOnce sync.Once

	// stopRequests ends the agents' long polls in flight (withStop):
	// shutdown calls it first.
	stopRequests context.CancelFunc
}

// Open builds every stage of a node from cfg, which Config.Validate has
// checked. It starts nothing: Start starts the stages and the listener.
// On failure what was opened is closed again; on success the caller owns
// the node and must end it with Shutdown or Close.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (a *Node, err error) {
	if err := secureDataDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	a = &Node{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	opened := a // a is nil once a failure is returned
	defer func() {
		if err != nil {
			opened.release()
		}
	}()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// With a postgres store the keys are shared by the nodes through it,
	// sealed with the operator's secrets key (sharedkeys.go); with SQLite
	// they are files of the data dir.
	var sealer *pki.Sealer
	if cfg.sharedKeys() {
		if sealer, err = loadSealer(cfg); err != nil {
			return nil, err
		}
	} else {
		if a.ca, err = pki.EnsureCA(filepath.Join(cfg.DataDir, "pki")); err != nil {
			return nil, err
		}
		if a.enrollFiles, err = enroll.OpenDir(filepath.Join(cfg.DataDir, "enroll"), vigil.SystemClock{}); err != nil {
			return nil, err
		}
		if a.auditKey, err = audit.EnsureKey(filepath.Join(cfg.DataDir, "pki", audit.KeyFile)); err != nil {
			return nil, err
		}
		if a.updateKey, err = enroll.EnsureUpdateKey(filepath.Join(cfg.DataDir, "pki", enroll.UpdateKeyFile)); err != nil {
			return nil, err
		}
	}
	if a.store, err = openStore(ctx, cfg.Store, cfg.DataDir, a.auditKey, log, a.registry); err != nil {
		return nil, err
	}
	if cfg.sharedKeys() {
		if err := a.openSharedKeys(ctx, sealer); err != nil {
			return nil, err
		}
	}
	if !cfg.InsecureHTTP {
		if a.tlsCert, err = a.ca.EnsureServerCert(filepath.Join(cfg.DataDir, "pki"), cfg.Hosts); err != nil {
			return nil, err
		}
	}
	// API tokens live in the store, shared by every node on it; a
	// tokens.json of an older data dir is imported once.
	a.tokens = auth.NewStoreTokens(a.store, auth.WithLogger(log))
	if _, err := a.tokens.ImportFile(filepath.Join(cfg.DataDir, "tokens.json")); err != nil {
		return nil, err
	}
	if a.adminToken, err = a.tokens.EnsureBootstrapAdmin(); err != nil {
		return nil, err
	}
	// Enrollment tokens and revocations live in the store too: a token
	// enrolls once on any node, a revoked certificate is refused by every
	// node. The files of an older data dir are imported once; tokens
	// `vigil ctl enroll-token create --data-dir` writes later are imported
	// when first presented.
	enrollDir := filepath.Join(cfg.DataDir, "enroll")
	etoks := enroll.NewStoreTokens(a.store, vigil.SystemClock{}, log)
	if _, err := etoks.ImportFile(filepath.Join(enrollDir, enroll.TokensFile)); err != nil {
		return nil, err
	}
	etoks.ImportOnMiss(filepath.Join(enrollDir, enroll.TokensFile))
	revs := enroll.NewStoreRevocations(a.store, vigil.SystemClock{}, log)
	if _, err := revs.ImportFile(filepath.Join(enrollDir, enroll.RevokedFile)); err != nil {
		return nil, err
	}
	a.enrollFiles.Tokens, a.enrollFiles.Revocations = etoks, revs
	if err := a.openAudit(ctx); err != nil {
		return nil, err
	}
	a.bus, err = natsbus.Open(ctx, natsbus.Config{
		URL:           cfg.NATSURL,
		DataDir:       filepath.Join(cfg.DataDir, "nats"),
		Prefix:        cfg.BusPrefix,
		Replicas:      cfg.BusReplicas,
		Partitions:    cfg.Partitions,
		Groups:        []string{groupStore, groupDetect, groupInventory, graph.Group},
		MaxEventBytes: cfg.BusMaxBytes,
		// After a crash, what was delivered and not acknowledged comes
		// back after AckWait; handlers take milliseconds, and redeliveries
		// are deduplicated by event id, so a short wait is safe.
		AckWait:    10 * time.Second,
		Logger:     log,
		Registerer: a.registry,
	})
	if err != nil {
		return nil, err
	}

	if err := a.openCluster(ctx); err != nil {
		return nil, err
	}

	detectors, ruleMgr, err := loadDetectors(cfg, log, a.registry)
	if err != nil {
		return nil, err
	}
	if err := a.openBaseline(ctx, detectors); err != nil {
		return nil, err
	}
	intelDet, err := a.openIntel(ctx)
	if err != nil {
		return nil, err
	}
	detectors = append(detectors, intelDet, scan.NewDetector(a.vuln))
	a.rules = ruleMgr
	dopts := detect.StageOptions{Group: groupDetect, Logger: log, Registerer: a.registry,
		ReplayAfter: time.Duration(cfg.ReplayAfter)}
	a.clusterDetect(&dopts)
	a.detect = detect.NewStage(a.bus, detectors, dopts)
	if a.inventory, err = inventory.NewStage(a.bus, a.store, inventory.Options{Group: groupInventory, Logger: log, Registerer: a.registry}); err != nil {
		return nil, err
	}
	own, err := cfg.ownAddrs()
	if err != nil {
		return nil, err
	}
	if a.incident, err = incident.NewCorrelator(ctx, a.store, incident.Options{Window: time.Duration(cfg.IncidentWindow), Logger: log, Registerer: a.registry,
		OwnAddrs: append(own, interfaceAddrs()...), Priority: a.prioritizer(), Shared: cfg.Cluster.Enabled}); err != nil {
		return nil, err
	}
	if err := a.openRespond(ctx); err != nil {
		return nil, err
	}
	if a.alerts, err = alert.NewStage(a.bus, a.store, alert.Options{
		Dedup:      alert.DedupOptions{Window: time.Duration(cfg.DedupWindow), Incidents: a.store},
		Assigner:   a.incident,
		Exceptions: a.excepter(),
		OnStored:   a.respondAlert,
		Logger:     log,
		Registerer: a.registry,
	}); err != nil {
		return nil, err
	}
	return a, nil
}

// loadDetectors loads the threshold rules and the Sigma rules: those built
// into the binary (rules/), then those of the configured directories. A
// built-in rule that does not load is a bug and stops the server; a rule of
// a configured directory that does not load is logged with its file, line
// and reason, and the others run (`vigil rules check` finds them first).
func loadDetectors(cfg Config, log *slog.Logger, reg prometheus.Registerer) ([]detect.Detector, *reload.Manager, error) {
	rlog := log.With("component", "rules")
	var all []*threshold.Rule
	var errs []error
	err := fs.WalkDir(rules.Threshold, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		b, err := rules.Threshold.ReadFile(p)
		if err != nil {
			return err
		}
		rs, es := threshold.Parse("builtin:"+p, b)
		all, errs = append(all, rs...), append(errs, es...)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read built-in rules: %w", err)
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("cannot load built-in threshold rules: %w", errors.Join(errs...))
	}
	for _, dir := range cfg.RulesDirs {
		rs, es := threshold.LoadDir(dir)
		all = append(all, rs...)
		for _, e := range es {
			rlog.Error("threshold rule rejected", "err", e)
		}
	}
	rlog.Info("threshold rules loaded", "rules", len(all))

	pack, err := fs.Sub(rules.Sigma, "sigma")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read built-in sigma rules: %w", err)
	}
	var mapping *sigma.Config
	if cfg.SigmaMapping != "" {
		if mapping, err = sigma.LoadConfig(cfg.SigmaMapping); err != nil {
			return nil, nil, err
		}
	}
	ropts := reload.Options{Sources: []sigma.Source{{Name: "builtin:sigma", FS: pack}}, Dirs: cfg.SigmaDirs, Config: mapping, Logger: log, Registerer: reg}
	rs, res := reload.Load(ropts)
	for _, e := range res.Rejected {
		if strings.HasPrefix(e.File, "builtin:") {
			return nil, nil, fmt.Errorf("cannot load built-in sigma rule: %w", e)
		}
		rlog.Error("sigma rule rejected", "err", e)
	}
	rlog.Info("sigma rules loaded", "rules", res.Compiled, "rejected", len(res.Rejected))
	det := sigma.NewDetector(rs, sigma.DetectorOptions{Logger: log, Registerer: reg})
	dets := []detect.Detector{
		threshold.New(all, threshold.Options{Logger: log, Registerer: reg}),
		det,
		heartbeat.New(heartbeat.Options{Silence: time.Duration(cfg.HeartbeatSilence)}),
		ids.New(), // alerts of the network monitors whose logs are ingested (vigil ingest)
		// console, cloud and device logins from a place new to the user
		newplace.New(newplace.Options{}),
	}
	if cfg.Baseline.Enabled {
		// An Enricher: the stage runs it before every detector, so the
		// Sigma rules see its baseline.* fields.
		dets = append(dets, baseline.New(baseline.Options{Learn: time.Duration(cfg.Baseline.Learn), Window: time.Duration(cfg.Baseline.Window)}))
	}
	return dets, reload.New(det, ropts, res), nil
}

// Start runs every stage and the API listener in the background. It
// returns once the listener is bound; URL is then set. The stages run
// until ctx is done, Shutdown or Close is called, or one fails (Done is
// then closed). On failure the caller still closes the node (Close).
func (a *Node) Start(ctx context.Context) error {
	ctx, a.cancel = context.WithCancel(ctx)

	redactor, err := ingest.NewRedactor(a.cfg.RedactPatterns)
	if err != nil {
		return err
	}
	a.identities = newIdentities(a.store, vigil.SystemClock{})
	if a.devmap, err = a.newDeviceMapper(); err != nil {
		return err
	}
	ingest, err := httpin.NewHandler(httpin.Options{
		Publisher:      a.devmap,
		MaxReportBytes: a.cfg.MaxReportBytes,
		MaxBulkBytes:   a.cfg.MaxBulkBytes,
		MaxFuture:      time.Duration(a.cfg.MaxClockSkew),
		Redactor:       redactor,
		Identities:     a.identities,
		Logger:         a.log.With("component", "ingest"), // httpin adds none of its own
		Registerer:     a.registry,
	})
	if err != nil {
		return err
	}
	if err := a.openMQTTIngest(); err != nil {
		return err
	}
	cloudRoutes, err := a.cloudPushRoutes(redactor)
	if err != nil {
		return err
	}
	// Devices enroll with a one-time token and then talk mutual TLS:
	// enroll.Front serves the device endpoints (and reports from a client
	// certificate) before the token-authenticated API.
	// The command queue lives in the store, shared by the nodes; the
	// commands.json of an older data dir is imported once.
	if err := a.importCommandQueue(); err != nil {
		return err
	}
	if a.enroll, err = enroll.New(enroll.Options{
		CA:          a.ca,
		Tokens:      a.enrollFiles.Tokens,
		Revocations: a.enrollFiles.Revocations,
		CommandKey:  a.enrollFiles.CommandKey,
		UpdateKey:   a.updateKey.Public().(ed25519.PublicKey),
		Report:      ingest.Report(),
		Bulk:        ingest.Bulk(),
		Audit:       a.auditRecorder(),
		OnEnroll:    a.enrolled,
		OnResult:    a.commandResult,
		OnQueued:    a.commandQueued,
		KnownDevice: func(ctx context.Context, id string) error { _, err := a.store.GetDevice(ctx, id); return err },
		Commands:    a.store,
		Logger:      a.log,
		Registerer:  a.registry,
	}); err != nil {
		return err
	}
	srv, err := web.NewServer(web.Options{
		Store:       a.store,
		Tokens:      a.tokens,
		AgentReport: ingest.Report(),
		BulkEvents:  ingest.Bulk(),
		Rules:       a.rules,
		Intel:       &web.Intel{Catalog: a.intel, Vuln: a.vuln, UploadDir: filepath.Join(a.cfg.DataDir, "intel", "uploads")},
		Extra:       append(append(append(append(append(append(append(append(a.enroll.AdminRoutes(), a.respondRoutes()...), a.baselineRoutes()...), a.exceptionRoutes()...), a.consoleRoutes()...), a.updateRoutes()...), a.investigationRoutes()...), a.huntRoutes()...), cloudRoutes...),
		Gatherer:    a.registry,
		Ready:       a.ready,
		Registerer:  a.registry,
		Logger:      a.log,
	})
	if err != nil {
		return err
	}
	a.web = srv
	lc := web.ListenConfig{Addr: a.cfg.Listen, PlainHTTP: a.cfg.InsecureHTTP, Logger: a.log}
	if !a.cfg.InsecureHTTP {
		lc.Certificate = &a.tlsCert
		lc.ClientCAs = a.ca.Pool()
	}
	reqCtx, stopRequests := context.WithCancel(context.Background())
	a.stopRequests = stopRequests
	handler, err := a.withConsole(reqCtx, srv)
	if err != nil {
		stopRequests()
		return err
	}
	handler = cloudPushQueryToken(handler)
	if a.http, err = web.Listen(lc, withStop(reqCtx, a.enroll.Front(a.withArtifactDelivery(handler)))); err != nil {
		stopRequests()
		return err
	}
	a.url = a.http.URL()

	g, gctx := errgroup.WithContext(ctx)
	a.stages = g
	a.done = make(chan struct{})
	defer func() {
		go func() { a.err = g.Wait(); close(a.done) }()
	}()
	g.Go(func() error { return store.RunEventSink(gctx, a.bus, a.store, a.log) })
	g.Go(func() error {
		return a.runSingleton(gctx, jobRetention, func(ctx context.Context) error {
			return store.RunRetention(ctx, a.store, time.Duration(a.cfg.Retention), time.Hour, vigil.SystemClock{}, a.log)
		})
	})
	g.Go(func() error { return a.inventory.Run(gctx) })
	g.Go(func() error { return a.runGraph(gctx) })
	g.Go(func() error { return a.detect.Run(gctx) })
	if a.baseline != nil {
		g.Go(func() error { return a.baseline.run(gctx) })
	}
	g.Go(func() error { return a.rules.Watch(gctx, 5*time.Second) })
	g.Go(func() error { return a.intel.Run(gctx, time.Minute) })
	g.Go(func() error { return a.vuln.Run(gctx, time.Minute) })
	g.Go(func() error { return a.vulnAlerts.run(gctx) })
	g.Go(func() error { return a.runAlerts(gctx) })
	if a.cluster != nil {
		g.Go(func() error { return a.cluster.m.Run(gctx) })
	}
	g.Go(func() error { return a.runHunt(gctx) })
	g.Go(func() error { return a.runRespond(gctx) })
	g.Go(func() error { return a.runRemediation(gctx) })
	g.Go(func() error { return a.runUpdateRepos(gctx) })
	g.Go(func() error { return a.runMQTTIngest(gctx) })
	g.Go(func() error { return a.runSyslog(gctx) })
	g.Go(func() error { return a.devmap.Run(gctx) })
	g.Go(func() error { return a.runExport(gctx) })
	g.Go(func() error { return a.enroll.Run(gctx) })
	g.Go(func() error {
		return a.runSingleton(gctx, jobAnchors, func(ctx context.Context) error {
			a.trail.Run(ctx, time.Duration(a.cfg.Audit.AnchorInterval))
			return nil
		})
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return a.http.Shutdown(sctx)
	})
	return nil
}

// enrolled records a newly enrolled device in the inventory, so it is
// listed before its first report.
func (a *Node) enrolled(ctx context.Context, deviceID, class string) {
	now := time.Now().UTC()
	// Merged into the stored device in one transaction (store.MergeDeviceReport):
	// the tags an operator set, and a quarantine, stay.
	d := vigil.Device{ID: deviceID, Class: class, State: vigil.StateActive, FirstSeen: now, LastSeen: now, Enrolled: now}
	if a.identities != nil {
		a.identities.markEnrolled(deviceID)
	}
	if _, err := a.store.MergeDeviceReports(ctx, []vigil.Device{d}); err != nil {
		a.log.Error("cannot record enrolled device", "component", "enroll", "device", deviceID, "err", err)
	}
}

// commandResult receives what an agent reports about a command it ran.
func (a *Node) commandResult(ctx context.Context, r command.Result) {
	// Results over HTTP were checked by the enroll handler already; over
	// MQTT they come here first. Checking twice finds the same command.
	if a.enroll == nil {
		return
	}
	if err := a.enroll.AcceptResult(&r); err != nil {
		a.log.Warn("command result refused", "component", "enroll", "device_id", r.DeviceID, "command", r.CommandID, "err", err)
		return
	}
	a.log.Info("command result", "component", "enroll", "command", r.CommandID, "status", r.Status)
	a.respondResult(r)
}

// ready tells /readyz whether the store answers and can write (after a
// failed write of events it is not ready until a write succeeds again) and
// whether the bus can take events (see natsbus.Bus.WriteErr).
func (a *Node) ready(ctx context.Context) error {
	if _, err := a.store.CountEvents(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := a.store.WriteErr(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := a.bus.WriteErr(); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// URL is the base URL of the node's API ("https://127.0.0.1:8443"), set
// once Start has bound the listener.
func (a *Node) URL() string { return a.url }

// AdminToken is the bootstrap admin token, made on the first start of a
// data dir (or of a shared store); empty on later starts. It is a secret:
// vigil serve prints it once and never logs it.
func (a *Node) AdminToken() string { return a.adminToken }

// Done is closed when the stages have ended: after Shutdown or Close, when
// the context given to Start is done, or when a stage failed (Wait then
// says which). Nil before Start.
func (a *Node) Done() <-chan struct{} { return a.done }

// Wait blocks until the stages end (see Done) and returns the first
// failure; nil at once when the node was never started.
func (a *Node) Wait() error {
	if a.done == nil {
		return nil
	}
	<-a.done
	if errors.Is(a.err, context.Canceled) {
		return nil
	}
	return a.err
}

// Close ends the stages at once (requests in flight are cut, see Shutdown
// for the orderly way), releases the store and the bus, and returns the
// stages' first failure. It may be called after a failed Start, after
// Shutdown, and more than once.
func (a *Node) Close() error {
	if a.cancel != nil {
		a.cancel()
	}
	if a.stopRequests != nil {
		a.stopRequests()
	}
	err := a.Wait()
	a.release()
	return err
}

// release flushes the vulnerability DB and closes the bus and the store,
// once.
func (a *Node) release() {
	a.closeOnce.Do(func() {
		if a.vuln != nil {
			a.vuln.Flush()
		}
		if a.bus != nil {
			a.bus.Close()
		}
		if a.store != nil {
			a.store.Close()
		}
	})
}

// Detectors are the detectors a node with cfg runs on events: the
// threshold and Sigma rules built in and of the configured directories,
// heartbeat, IDS, new place, and the learned baseline, also returned
// alone (nil when baseline.enabled is false). vigil detect runs them on
// files. Rules of the configured directories that do not load are logged
// to log; a built-in one that does not is an error.
func Detectors(cfg Config, log *slog.Logger) ([]detect.Detector, *baseline.Detector, error) {
	dets, _, err := loadDetectors(cfg, log, nil)
	if err != nil {
		return nil, nil, err
	}
	return dets, findBaseline(dets), nil
}
