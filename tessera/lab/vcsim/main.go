// Command vcsim is Tessera's lab vCenter: govmomi's simulator sized by flags, with the
// gaps that break pyvmomi and bulk inventory clients filled in here (see README notes in
// tessera/lab/vcsim.py). It prints one JSON line on stdout once it serves requests.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type options struct {
	datacenters, clusters, clusterHosts, standalone      int
	vms, templates, datastores                           int
	dvPortgroups, dvVlanBase, stdPortgroups, stdVlanBase int
	username, password, listen, instanceUUID             string
	tls                                                  bool
}

func parseFlags() options {
	var o options
	flag.IntVar(&o.datacenters, "dc", 1, "datacenters")
	flag.IntVar(&o.clusters, "cluster", 1, "clusters per datacenter")
	flag.IntVar(&o.clusterHosts, "host", 2, "hosts per cluster")
	flag.IntVar(&o.standalone, "standalone-host", 1, "standalone hosts per datacenter")
	flag.IntVar(&o.vms, "vm", 10, "total VMs, spread round-robin over clusters and standalone hosts")
	flag.IntVar(&o.templates, "template", 0, "how many of the VMs are templates")
	flag.IntVar(&o.datastores, "ds", 2, "datastores per datacenter, mounted on every host")
	flag.IntVar(&o.dvPortgroups, "dvpg", 2, "DVS portgroups per datacenter (0: no DVS)")
	flag.IntVar(&o.dvVlanBase, "dvpg-vlan-base", 100, "VLAN id of the first DVS portgroup")
	flag.IntVar(&o.stdPortgroups, "stdpg", 1, "standard portgroups per datacenter, on every host")
	flag.IntVar(&o.stdVlanBase, "stdpg-vlan-base", 200, "VLAN id of the first standard portgroup")
	flag.StringVar(&o.username, "username", "user", "login user name")
	flag.StringVar(&o.password, "password", "pass", "login password (TESSERA_VCSIM_PASSWORD wins, keeping it out of ps)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "host:port to listen on (port 0: pick a free one)")
	flag.StringVar(&o.instanceUUID, "uuid", "", "content.about.instanceUuid (default: random)")
	flag.BoolVar(&o.tls, "tls", true, "serve https")
	flag.Parse()
	if env := os.Getenv("TESSERA_VCSIM_PASSWORD"); env != "" {
		o.password = env
	}
	if o.instanceUUID == "" {
		o.instanceUUID = uuid.New().String()
	}
	return o
}

// macAllocator hands out MACs unique within this instance (a counter) and, with high
// probability, across instances (16 bits of the instance UUID's hash), in the locally
// administered range so they never collide with real VMware OUIs.
type macAllocator struct {
	mu      sync.Mutex
	prefix  [2]byte
	counter uint32
	self    types.ManagedObjectReference
	owner   map[string]types.ManagedObjectReference // MAC -> VM, to catch clones' copies
}

func newMacAllocator(instanceUUID string) *macAllocator {
	sum := sha256.Sum256([]byte(instanceUUID))
	return &macAllocator{
		prefix: [2]byte{sum[0], sum[1]},
		owner:  map[string]types.ManagedObjectReference{},
		self:   types.ManagedObjectReference{Type: "TesseraMacAllocator", Value: "mac-allocator"},
	}
}

func (a *macAllocator) next() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.counter++
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a.counter)
	mac := net.HardwareAddr{0x02, a.prefix[0], a.prefix[1], b[1], b[2], b[3]}
	return mac.String()
}

func (a *macAllocator) claim(mac string, vm types.ManagedObjectReference) {
	a.mu.Lock()
	a.owner[mac] = vm
	a.mu.Unlock()
}

func (a *macAllocator) owns(mac string) bool {
	hw, err := net.ParseMAC(mac)
	return err == nil && len(hw) == 6 && hw[0] == 0x02 && hw[1] == a.prefix[0] && hw[2] == a.prefix[1]
}

// Reference, PutObject, UpdateObject and RemoveObject make the allocator a registry
// handler: the simulator derives NIC MACs from 3 characters of the VM's UUID string, so
// NICs added later (CreateVM, ReconfigVM without a MAC) collide, and CloneVM copies the
// source's MACs; we replace them as soon as the device list is stored.
func (a *macAllocator) Reference() types.ManagedObjectReference   { return a.self }
func (a *macAllocator) PutObject(mo.Reference)                    {}
func (a *macAllocator) RemoveObject(types.ManagedObjectReference) {}
func (a *macAllocator) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok || vm.Config == nil {
		return
	}
	for _, c := range changes {
		if c.Name == "config.hardware.device" {
			keepDeviceOrder(vm)
			a.fixMACs(vm)
			return
		}
	}
}

// keepDeviceOrder undoes the simulator's habit of moving an edited device to the end of
// the list (its edit is a remove and an add): vCenter keeps a device in place, and NIC
// order is what guests see. Keys grow as devices are added, so key order is that place.
func keepDeviceOrder(vm *mo.VirtualMachine) {
	devices := vm.Config.Hardware.Device
	sort.SliceStable(devices, func(i, j int) bool {
		return devices[i].GetVirtualDevice().Key < devices[j].GetVirtualDevice().Key
	})
}

func (a *macAllocator) fixMACs(vm *mo.VirtualMachine) {
	for i, d := range vm.Config.Hardware.Device {
		nic, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		card := nic.GetVirtualEthernetCard()
		if card.AddressType == string(types.VirtualEthernetCardMacTypeManual) {
			continue
		}
		a.mu.Lock()
		owner, taken := a.owner[card.MacAddress]
		a.mu.Unlock()
		if a.owns(card.MacAddress) && (!taken || owner == vm.Self) {
			a.claim(card.MacAddress, vm.Self)
			continue
		}
		// A clone's device is the source's own struct: change a copy.
		value := reflect.ValueOf(d).Elem()
		copied := reflect.New(value.Type())
		copied.Elem().Set(value)
		vm.Config.Hardware.Device[i] = copied.Interface().(types.BaseVirtualDevice)
		card = copied.Interface().(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		old := card.MacAddress
		card.MacAddress = a.next()
		card.AddressType = string(types.VirtualEthernetCardMacTypeAssigned)
		a.claim(card.MacAddress, vm.Self)
		if vm.Guest != nil {
			for j := range vm.Guest.Net {
				if vm.Guest.Net[j].DeviceConfigId == card.Key && vm.Guest.Net[j].MacAddress == old {
					vm.Guest.Net[j].MacAddress = card.MacAddress
				}
			}
		}
	}
}

// snapshotHardware makes RevertToSnapshot restore the VM's hardware (CPU, memory,
// devices) as vCenter does; the simulator only moves snapshot.currentSnapshot. It keeps a
// copy of the hardware each snapshot was taken with and applies it when a revert sets
// currentSnapshot alone (create sets it with the tree, or to a snapshot of the current
// hardware; remove always sends the tree too).
type snapshotHardware struct {
	mu    sync.Mutex
	saved map[types.ManagedObjectReference]types.VirtualHardware
}

func (s *snapshotHardware) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "TesseraSnapshotHardware", Value: "snapshot-hardware"}
}

func (s *snapshotHardware) PutObject(obj mo.Reference) {
	snap, ok := obj.(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	hw := snap.Config.Hardware
	hw.Device = append([]types.BaseVirtualDevice(nil), hw.Device...) // reconfigure replaces devices, never edits them
	s.mu.Lock()
	s.saved[snap.Self] = hw
	s.mu.Unlock()
}

func (s *snapshotHardware) RemoveObject(ref types.ManagedObjectReference) {
	s.mu.Lock()
	delete(s.saved, ref)
	s.mu.Unlock()
}

func (s *snapshotHardware) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok || len(changes) != 1 || changes[0].Name != "snapshot.currentSnapshot" {
		return
	}
	ref, ok := changes[0].Val.(types.ManagedObjectReference)
	if !ok {
		return
	}
	s.mu.Lock()
	hw, found := s.saved[ref]
	s.mu.Unlock()
	if !found {
		return
	}
	simulator.Map.Update(vm, []types.PropertyChange{
		{Name: "config.hardware.numCPU", Val: hw.NumCPU},
		{Name: "config.hardware.memoryMB", Val: hw.MemoryMB},
		{Name: "config.hardware.device", Val: append([]types.BaseVirtualDevice(nil), hw.Device...)},
	})
}

// pagedCollector adds what this simulator version lacks for bulk readers:
// RetrievePropertiesEx honours options.maxObjects and returns a token that
// ContinueRetrievePropertiesEx / CancelRetrievePropertiesEx understand. It is embedded by
// value because the simulator clones the singleton per session with reflect.New.
type pagedCollector struct {
	simulator.PropertyCollector

	mu      sync.Mutex
	pending map[string]pendingPages
	seq     int
}

type pendingPages struct {
	rest []types.ObjectContent
	size int32
}

func (pc *pagedCollector) page(objects []types.ObjectContent, size int32) *types.RetrieveResult {
	if size <= 0 || int(size) >= len(objects) {
		return &types.RetrieveResult{Objects: objects}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.pending == nil {
		pc.pending = make(map[string]pendingPages)
	}
	pc.seq++
	token := fmt.Sprintf("page-%d", pc.seq)
	pc.pending[token] = pendingPages{rest: objects[size:], size: size}
	return &types.RetrieveResult{Objects: objects[:size], Token: token}
}

func (pc *pagedCollector) RetrievePropertiesEx(ctx *simulator.Context, r *types.RetrievePropertiesEx) soap.HasFault {
	res := pc.PropertyCollector.RetrievePropertiesEx(ctx, r)
	body, ok := res.(*methods.RetrievePropertiesExBody)
	if !ok || body.Res == nil || body.Res.Returnval == nil {
		return res
	}
	body.Res.Returnval = pc.page(body.Res.Returnval.Objects, r.Options.MaxObjects)
	return body
}

// ContinueRetrievePropertiesEx serves the next page; later pages keep the first page's size.
func (pc *pagedCollector) ContinueRetrievePropertiesEx(r *types.ContinueRetrievePropertiesEx) soap.HasFault {
	body := &methods.ContinueRetrievePropertiesExBody{}
	pc.mu.Lock()
	pending, ok := pc.pending[r.Token]
	delete(pc.pending, r.Token)
	pc.mu.Unlock()
	if !ok {
		body.Fault_ = simulator.Fault("unknown token", &types.InvalidArgument{InvalidProperty: "token"})
		return body
	}
	body.Res = &types.ContinueRetrievePropertiesExResponse{Returnval: *pc.page(pending.rest, pending.size)}
	return body
}

func (pc *pagedCollector) CancelRetrievePropertiesEx(r *types.CancelRetrievePropertiesEx) soap.HasFault {
	pc.mu.Lock()
	delete(pc.pending, r.Token)
	pc.mu.Unlock()
	return &methods.CancelRetrievePropertiesExBody{Res: new(types.CancelRetrievePropertiesExResponse)}
}

// FetchResponse is the body of an answer to Fetch, the call pyvmomi makes for every
// attribute read (vm.snapshot, template.resourcePool, ...). Its Go name is the element name.
type FetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *FetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch answers an unset property with an empty response, as vCenter does (pyvmomi turns
// it into None); the simulator indexes an empty result and panics, which drops the
// connection. The request type lives in an internal package, hence interface{}.
func (pc *pagedCollector) Fetch(ctx *simulator.Context, req interface{}) soap.HasFault {
	r := reflect.ValueOf(req).Elem()
	this := r.FieldByName("This").Interface().(types.ManagedObjectReference)
	prop := r.FieldByName("Prop").String()
	if this != vim25.ServiceInstance && simulator.Map.Get(this) != nil {
		res := pc.PropertyCollector.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{
			SpecSet: []types.PropertyFilterSpec{{
				PropSet:   []types.PropertySpec{{Type: this.Type, PathSet: []string{prop}}},
				ObjectSet: []types.ObjectSpec{{Obj: this}},
			}},
		})
		if res.Fault() != nil {
			return res
		}
		objects := res.(*methods.RetrievePropertiesExBody).Res.Returnval.Objects
		if len(objects) == 1 && len(objects[0].PropSet) == 0 && len(objects[0].MissingSet) == 0 {
			return &fetchBody{Res: &FetchResponse{}}
		}
	}
	out := reflect.ValueOf(&pc.PropertyCollector).MethodByName("Fetch").Call(
		[]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	return out[0].Interface().(soap.HasFault)
}

var (
	soapMethod = regexp.MustCompile(`<(?:\w+:)?Body[^>]*>\s*<(?:\w+:)?(\w+)`)
	soapPath   = regexp.MustCompile(`<(?:\w+:)?(?:pathSet|prop)[^>]*>([^<]*)<`)
)

type recordingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *recordingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// faultOnPanic turns a panic inside a SOAP handler into a SOAP fault. Without it the
// simulator drops the connection, e.g. on a property path that walks into an array
// ("guest.net.ipAddress"); vCenter answers InvalidProperty there.
func faultOnPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rw := &recordingWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if rw.wrote {
				panic(http.ErrAbortHandler)
			}
			log.Printf("recovered from panic serving %s: %v", r.URL.Path, p)
			fault := `<SystemErrorFault xmlns="urn:vim25" xsi:type="SystemError"><reason>%s</reason></SystemErrorFault>`
			detail := fmt.Sprintf(fault, html.EscapeString(fmt.Sprint(p)))
			if m := soapMethod.FindSubmatch(body); m != nil {
				switch string(m[1]) {
				case "RetrieveProperties", "RetrievePropertiesEx", "CreateFilter", "WaitForUpdates", "WaitForUpdatesEx", "Fetch":
					name := ""
					if pm := soapPath.FindSubmatch(body); pm != nil {
						name = string(pm[1])
					}
					detail = fmt.Sprintf(`<InvalidPropertyFault xmlns="urn:vim25" xsi:type="InvalidProperty"><name>%s</name></InvalidPropertyFault>`, html.EscapeString(name))
				}
			}
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail>%s</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
				html.EscapeString(fmt.Sprint(p)), detail)
		}()
		next.ServeHTTP(rw, r)
	})
}

// lab holds what VM creation needs from one datacenter.
type lab struct {
	dc         *object.Datacenter
	folders    *object.DatacenterFolders
	placements []placement
	datastores []string
	nics       []types.BaseVirtualDeviceBackingInfo // DVS portgroups first, then standard
	dvCount    int
}

type placement struct {
	pool *object.ResourcePool
	host *object.HostSystem
}

var guestIDs = []string{"ubuntu64Guest", "rhel8_64Guest", "windows2019srv_64Guest", "otherLinux64Guest"}

func sortByName[T interface{ Name() string }](items []T) {
	sort.Slice(items, func(i, j int) bool { return items[i].Name() < items[j].Name() })
}

func must(err error, what string) {
	if err != nil {
		log.Fatalf("%s: %v", what, err)
	}
}

// setDVPortgroupVLANs gives each model DVS portgroup its own VLAN id (the model leaves 0).
func setDVPortgroupVLANs(o options) {
	byDC := map[string][]*simulator.DistributedVirtualPortgroup{}
	for _, e := range simulator.Map.All("DistributedVirtualPortgroup") {
		pg := e.(*simulator.DistributedVirtualPortgroup)
		if strings.Contains(pg.Name, "DVUplinks") {
			continue
		}
		dc := strings.SplitN(pg.Name, "_", 2)[0]
		byDC[dc] = append(byDC[dc], pg)
	}
	for _, pgs := range byDC {
		sort.Slice(pgs, func(i, j int) bool { return pgs[i].Name < pgs[j].Name })
		for i, pg := range pgs {
			vlan := &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: int32(o.dvVlanBase + i)}
			if setting, ok := pg.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok {
				setting.Vlan = vlan
			} else {
				pg.Config.DefaultPortConfig = &types.VMwareDVSPortSetting{Vlan: vlan}
			}
		}
	}
}

// addStandardPortgroups creates each portgroup on every host of the datacenter: the
// simulator's AddPortGroup creates the Network on the first call only and does not record
// the portgroup in the host's config.network, which inventory readers use for VLAN ids.
func addStandardPortgroups(ctx context.Context, c *vim25.Client, o options, dcName string, hosts []*object.HostSystem) []types.BaseVirtualDeviceBackingInfo {
	var backings []types.BaseVirtualDeviceBackingInfo
	if len(hosts) == 0 {
		return nil
	}
	finder := find.NewFinder(c, false)
	if vmNet, err := finder.Network(ctx, fmt.Sprintf("/%s/network/VM Network", dcName)); err == nil {
		if network, ok := simulator.Map.Get(vmNet.Reference()).(*mo.Network); ok && len(network.Host) == 0 {
			for _, h := range hosts {
				network.Host = append(network.Host, h.Reference())
			}
		}
	}
	for i := 0; i < o.stdPortgroups; i++ {
		name := fmt.Sprintf("%s_VLAN%d", dcName, o.stdVlanBase+i)
		spec := types.HostPortGroupSpec{Name: name, VlanId: int32(o.stdVlanBase + i), VswitchName: "vSwitch0", Policy: types.HostNetworkPolicy{}}
		ns, err := hosts[0].ConfigManager().NetworkSystem(ctx)
		must(err, "network system")
		must(ns.AddPortGroup(ctx, spec), "add portgroup")
		netObj, err := finder.Network(ctx, fmt.Sprintf("/%s/network/%s", dcName, name))
		must(err, "find portgroup")
		network := simulator.Map.Get(netObj.Reference()).(*mo.Network)
		for _, h := range hosts {
			host := simulator.Map.Get(h.Reference()).(*simulator.HostSystem)
			host.Config.Network.Portgroup = append(host.Config.Network.Portgroup, types.HostPortGroup{
				Key:  "key-vim.host.PortGroup-" + name,
				Spec: spec,
			})
			host.Network = append(host.Network, network.Self)
			network.Host = append(network.Host, host.Self)
		}
		backing, err := netObj.EthernetCardBackingInfo(ctx)
		must(err, "network backing")
		backings = append(backings, backing)
	}
	return backings
}

func collectLabs(ctx context.Context, c *vim25.Client, o options) []*lab {
	finder := find.NewFinder(c, false)
	dcs, err := finder.DatacenterList(ctx, "*")
	must(err, "datacenters")
	sortByName(dcs)
	var labs []*lab
	for _, dc := range dcs {
		l := &lab{dc: dc}
		l.folders, err = dc.Folders(ctx)
		must(err, "folders")
		finder.SetDatacenter(dc)
		crs, _ := finder.ComputeResourceList(ctx, "*")
		sortByName(crs)
		var allHosts []*object.HostSystem
		for _, cr := range crs {
			pool, err := cr.ResourcePool(ctx)
			must(err, "resource pool")
			hosts, err := cr.Hosts(ctx)
			must(err, "hosts")
			sortByName(hosts)
			allHosts = append(allHosts, hosts...)
			for _, h := range hosts {
				l.placements = append(l.placements, placement{pool: pool, host: h})
			}
		}
		dss, _ := finder.DatastoreList(ctx, "*")
		sortByName(dss)
		for _, ds := range dss {
			l.datastores = append(l.datastores, ds.Name())
		}
		nets, _ := finder.NetworkList(ctx, "*")
		var pgs []*object.DistributedVirtualPortgroup
		for _, n := range nets {
			if pg, ok := n.(*object.DistributedVirtualPortgroup); ok && !strings.Contains(pg.Name(), "DVUplinks") {
				pgs = append(pgs, pg)
			}
		}
		sortByName(pgs)
		for _, pg := range pgs {
			backing, err := pg.EthernetCardBackingInfo(ctx)
			must(err, "portgroup backing")
			l.nics = append(l.nics, backing)
		}
		l.dvCount = len(l.nics)
		l.nics = append(l.nics, addStandardPortgroups(ctx, c, o, dc.Name(), allHosts)...)
		if len(l.placements) > 0 && len(l.datastores) > 0 {
			labs = append(labs, l)
		}
	}
	return labs
}

// vmSpec gives VM i realistic hardware: a disk on a datastore, a NIC on a DVS portgroup
// (or a standard one), every third VM a second NIC on a standard network.
func vmSpec(i int, l *lab, macs *macAllocator) types.VirtualMachineConfigSpec {
	name := fmt.Sprintf("%s_VM%05d", l.dc.Name(), i)
	ds := l.datastores[i%len(l.datastores)]
	spec := types.VirtualMachineConfigSpec{
		Name:     name,
		GuestId:  guestIDs[i%len(guestIDs)],
		NumCPUs:  int32(1 << (i % 3)),
		MemoryMB: int64(1024 << (i % 4)),
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + ds + "]"},
	}
	if i%2 == 0 {
		spec.Annotation = fmt.Sprintf("lab VM %d", i)
	}
	var devices object.VirtualDeviceList
	scsi, err := devices.CreateSCSIController("pvscsi")
	must(err, "scsi")
	devices = append(devices, scsi)
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), types.ManagedObjectReference{},
		fmt.Sprintf("[%s] %s/%s.vmdk", ds, name, name))
	disk.CapacityInKB = int64(8+8*(i%4)) * 1024 * 1024
	disk.CapacityInBytes = disk.CapacityInKB * 1024
	devices = append(devices, disk)
	addNIC := func(model string, backing types.BaseVirtualDeviceBackingInfo) {
		nic, err := devices.CreateEthernetCard(model, backing)
		must(err, "nic")
		card := nic.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		card.MacAddress = macs.next()
		card.AddressType = string(types.VirtualEthernetCardMacTypeAssigned)
		devices = append(devices, nic)
	}
	if len(l.nics) > 0 {
		primary := i % len(l.nics)
		if l.dvCount > 0 {
			primary = i % l.dvCount
		}
		addNIC("vmxnet3", l.nics[primary])
		if std := len(l.nics) - l.dvCount; std > 0 && l.dvCount > 0 && i%3 == 0 {
			addNIC("e1000e", l.nics[l.dvCount+i%std])
		}
	}
	spec.DeviceChange, err = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	must(err, "device spec")
	return spec
}

func createVMs(ctx context.Context, c *vim25.Client, o options, labs []*lab, macs *macAllocator) {
	if len(labs) == 0 {
		if o.vms > 0 {
			log.Fatal("no datacenter with hosts and datastores to place VMs on")
		}
		return
	}
	firstTemplate := o.vms - o.templates
	for i := 0; i < o.vms; i++ {
		l := labs[i%len(labs)]
		p := l.placements[(i/len(labs))%len(l.placements)]
		task, err := l.folders.VmFolder.CreateVM(ctx, vmSpec(i, l, macs), p.pool, p.host)
		must(err, "create vm")
		info, err := task.WaitForResult(ctx, nil)
		must(err, "create vm")
		vm := object.NewVirtualMachine(c, info.Result.(types.ManagedObjectReference))
		switch {
		case i >= firstTemplate:
			must(vm.MarkAsTemplate(ctx), "mark as template")
		case i%5 != 4: // most VMs run, as in a real estate
			task, err := vm.PowerOn(ctx)
			must(err, "power on")
			must(task.Wait(ctx), "power on")
		}
	}
}

// fixDatastores records every host's mount (the model keeps only the last host that
// created the shared local datastore) and sizes datastores to hold their VMs' disks, as
// the simulator derives capacity from the lab machine's own disk.
func fixDatastores() {
	used := map[types.ManagedObjectReference]int64{}
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		for _, d := range vm.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok {
				if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					if ds := b.GetVirtualDeviceFileBackingInfo().Datastore; ds != nil {
						used[*ds] += disk.CapacityInBytes
					}
				}
			}
		}
	}
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		for _, ref := range host.Datastore {
			ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
			if !ok {
				continue
			}
			mounted := false
			for _, m := range ds.Host {
				mounted = mounted || m.Key == host.Self
			}
			if !mounted {
				ds.Host = append(ds.Host, types.DatastoreHostMount{Key: host.Self, MountInfo: ds.Host[0].MountInfo})
			}
		}
	}
	const tib = int64(1) << 40
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		capacity := 16 * tib
		for capacity < 2*used[ds.Self] {
			capacity *= 2
		}
		ds.Summary.Capacity = capacity
		ds.Summary.FreeSpace = capacity - used[ds.Self]
		info := ds.Info.GetDatastoreInfo()
		info.FreeSpace = ds.Summary.FreeSpace
	}
}

type readyLine struct {
	URL          string  `json:"url"`
	Username     string  `json:"username"`
	InstanceUUID string  `json:"instance_uuid"`
	PID          int     `json:"pid"`
	StartSeconds float64 `json:"start_seconds"`
}

func main() {
	started := time.Now()
	o := parseFlags()
	log.SetOutput(os.Stderr)

	model := simulator.VPX()
	model.Datacenter = o.datacenters
	model.Cluster = o.clusters
	model.ClusterHost = o.clusterHosts
	model.Host = o.standalone
	model.Datastore = o.datastores
	model.Portgroup = o.dvPortgroups
	model.Machine = 0
	model.Autostart = false
	must(model.Create(), "create model")
	defer model.Remove()

	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	si.Content.About.InstanceUuid = o.instanceUUID
	pcRef := si.Content.PropertyCollector
	collector := &pagedCollector{}
	collector.Self = pcRef // the singleton holds nothing else before the first session
	simulator.Map.Put(collector)

	ctx := context.Background()
	client, err := vim25.NewClient(ctx, model.Service)
	must(err, "in-process client")
	macs := newMacAllocator(o.instanceUUID)
	setDVPortgroupVLANs(o)
	simulator.Map.AddHandler(macs)
	simulator.Map.AddHandler(&snapshotHardware{saved: map[types.ManagedObjectReference]types.VirtualHardware{}})
	tracker := newChangeTracker(o)
	simulator.Map.AddHandler(tracker)
	createVMs(ctx, client, o, collectLabs(ctx, client, o), macs)
	fixDatastores()

	model.Service.Listen = &url.URL{Host: o.listen, User: url.UserPassword(o.username, o.password)}
	if o.tls {
		model.Service.TLS = new(tls.Config)
	}
	model.Service.ServeMux = http.NewServeMux()
	model.Service.ServeMux.HandleFunc("/tessera/lab/disk/", tracker.serveDisk)
	server := model.Service.NewServer()
	defer server.Close()
	// Nothing knows the port before the ready line, so no request races this swap.
	server.Config.Handler = faultOnPanic(tracker.routeChangedAreas(model.Service.ServeMux))

	u := *server.URL
	u.User = nil
	line, _ := json.Marshal(readyLine{
		URL: u.String(), Username: o.username, InstanceUUID: o.instanceUUID,
		PID: os.Getpid(), StartSeconds: time.Since(started).Seconds(),
	})
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	<-sig
}

// changeTracker is the lab's changed block tracking (CBT), which the simulator lacks.
//
// Disks that carry real contents in the lab are flat extents, as on VMFS: a "x.vmdk"
// descriptor naming "x-flat.vmdk", so a guest offset is a file offset and a write is a
// plain pwrite. Writes come from the lab's disk-write command (POST
// /tessera/lab/disk/write); while the VM's config.changeTrackingEnabled is set each one
// is logged with a sequence number. A snapshot gives each of its disks a change id
// "<epoch>/<seq>" (epoch: one per stretch of tracking), and QueryChangedDiskAreas answers
// the areas written after a change id up to the snapshot's, or, for "*", every
// allocated area of the flat file (SEEK_DATA/SEEK_HOLE).
type changeTracker struct {
	mu       sync.Mutex
	disks    map[diskID]*diskLog
	username string
	password string
}

type diskID struct {
	vm  string
	key int32
}

type diskLog struct {
	epoch  string
	seq    int64
	writes []diskWrite
}

type diskWrite struct{ seq, offset, length int64 }

func newChangeTracker(o options) *changeTracker {
	return &changeTracker{disks: map[diskID]*diskLog{}, username: o.username, password: o.password}
}

// log returns the disk's log while tracking is on (a fresh epoch when it was off), nil
// while it is off (dropping what was tracked, as turning CBT off does).
func (t *changeTracker) log(vm *simulator.VirtualMachine, key int32) *diskLog {
	id := diskID{vm.Self.Value, key}
	enabled := vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
	if !enabled {
		delete(t.disks, id)
		return nil
	}
	if t.disks[id] == nil {
		t.disks[id] = &diskLog{epoch: uuid.New().String()[:8]}
	}
	return t.disks[id]
}

func (l *diskLog) changeID() string { return fmt.Sprintf("%s/%d", l.epoch, l.seq) }

// Reference, PutObject, UpdateObject and RemoveObject make the tracker a registry handler:
// a new snapshot's disks get their change ids. The snapshot's devices are the VM's own
// structs, so its disks are copied before their backing is changed.
func (t *changeTracker) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "TesseraChangeTracker", Value: "change-tracker"}
}
func (t *changeTracker) UpdateObject(mo.Reference, []types.PropertyChange) {}
func (t *changeTracker) RemoveObject(types.ManagedObjectReference)         {}
func (t *changeTracker) PutObject(obj mo.Reference) {
	snap, ok := obj.(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	vm, ok := simulator.Map.Get(snap.Vm).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	devices := append([]types.BaseVirtualDevice(nil), snap.Config.Hardware.Device...)
	for i, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		flat, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		l := t.log(vm, disk.Key)
		if !ok || l == nil {
			continue
		}
		diskCopy, backingCopy := *disk, *flat
		backingCopy.ChangeId = l.changeID()
		diskCopy.Backing = &backingCopy
		devices[i] = &diskCopy
	}
	snap.Config.Hardware.Device = devices
}

// changeIDOf reads the change id a snapshot gave disk `key`.
func changeIDOf(ref *types.ManagedObjectReference, key int32) (string, bool) {
	if ref == nil {
		return "", false
	}
	snap, ok := simulator.Map.Get(*ref).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return "", false
	}
	for _, d := range snap.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok && disk.Key == key {
			if flat, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				return flat.ChangeId, flat.ChangeId != ""
			}
		}
	}
	return "", false
}

// vmChanges answers QueryChangedDiskAreas for one VM. The simulator finds a method on the
// object `_this` names, and its VirtualMachine has none by this name, so the SOAP layer
// (routeChangedAreas) addresses the request to this object, which has the VM's moref value.
type vmChanges struct {
	self    types.ManagedObjectReference
	tracker *changeTracker
}

func (v *vmChanges) Reference() types.ManagedObjectReference { return v.self }

func (v *vmChanges) QueryChangedDiskAreas(ctx *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	body := &methods.QueryChangedDiskAreasBody{}
	fail := func(msg string, fault types.BaseMethodFault) soap.HasFault {
		body.Fault_ = simulator.Fault(msg, fault)
		return body
	}
	vmRef := types.ManagedObjectReference{Type: "VirtualMachine", Value: v.self.Value}
	vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine)
	if !ok {
		return fail("no such VM", &types.ManagedObjectNotFound{Obj: vmRef})
	}
	disk, file, err := flatExtent(vm, req.DeviceKey)
	if err != nil {
		return fail(err.Error(), &types.InvalidArgument{InvalidProperty: "deviceKey"})
	}
	capacity := disk.CapacityInBytes
	info := types.DiskChangeInfo{StartOffset: req.StartOffset, Length: capacity - req.StartOffset}
	v.tracker.mu.Lock()
	defer v.tracker.mu.Unlock()
	l := v.tracker.log(vm, req.DeviceKey)
	if l == nil {
		return fail("changed block tracking is off for this VM", &types.FileFault{File: file})
	}
	if req.ChangeId == "*" {
		areas, err := allocatedAreas(file, req.StartOffset, capacity)
		if err != nil {
			return fail(err.Error(), &types.FileFault{File: file})
		}
		info.ChangedArea = areas
		body.Res = &types.QueryChangedDiskAreasResponse{Returnval: info}
		return body
	}
	var epoch string
	var from int64
	if _, err := fmt.Sscanf(strings.Replace(req.ChangeId, "/", " ", 1), "%s %d", &epoch, &from); err != nil || epoch != l.epoch {
		return fail("unknown change id "+req.ChangeId, &types.InvalidArgument{InvalidProperty: "changeId"})
	}
	upTo := l.seq // no snapshot: up to now
	if snapID, ok := changeIDOf(req.Snapshot, req.DeviceKey); ok {
		fmt.Sscanf(strings.Replace(snapID, "/", " ", 1), "%s %d", &epoch, &upTo)
	}
	var areas []types.DiskChangeExtent
	for _, w := range l.writes {
		if w.seq > from && w.seq <= upTo && w.offset+w.length > req.StartOffset {
			areas = append(areas, types.DiskChangeExtent{Start: w.offset, Length: w.length})
		}
	}
	info.ChangedArea = mergeAreas(areas)
	body.Res = &types.QueryChangedDiskAreasResponse{Returnval: info}
	return body
}

// mergeAreas sorts areas and joins the ones that overlap or touch.
func mergeAreas(areas []types.DiskChangeExtent) []types.DiskChangeExtent {
	sort.Slice(areas, func(i, j int) bool { return areas[i].Start < areas[j].Start })
	var merged []types.DiskChangeExtent
	for _, a := range areas {
		if n := len(merged); n > 0 && a.Start <= merged[n-1].Start+merged[n-1].Length {
			if end := a.Start + a.Length; end > merged[n-1].Start+merged[n-1].Length {
				merged[n-1].Length = end - merged[n-1].Start
			}
			continue
		}
		merged = append(merged, a)
	}
	return merged
}

const seekData, seekHole = 3, 4 // lseek whences (Linux)

// allocatedAreas lists the data extents of a sparse file between start and end.
func allocatedAreas(file string, start, end int64) ([]types.DiskChangeExtent, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var areas []types.DiskChangeExtent
	for off := start; off < end; {
		data, err := f.Seek(off, seekData)
		if err != nil || data >= end { // ENXIO: no data after off
			break
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil {
			return nil, err
		}
		if hole > end {
			hole = end
		}
		areas = append(areas, types.DiskChangeExtent{Start: data, Length: hole - data})
		off = hole
	}
	return areas, nil
}

// flatExtent is disk `key` of the VM and the local path of its flat extent.
func flatExtent(vm *simulator.VirtualMachine, key int32) (*types.VirtualDisk, string, error) {
	for _, d := range vm.Config.Hardware.Device {
		disk, ok := d.(*types.VirtualDisk)
		if !ok || disk.Key != key {
			continue
		}
		backing, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			return nil, "", fmt.Errorf("disk %d has no file backing", key)
		}
		var p object.DatastorePath
		if !p.FromString(backing.GetVirtualDeviceFileBackingInfo().FileName) {
			return nil, "", fmt.Errorf("disk %d has a malformed file name", key)
		}
		host, ok := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
		if !ok {
			return nil, "", fmt.Errorf("the VM has no host")
		}
		ds, ok := simulator.Map.FindByName(p.Datastore, host.Datastore).(*simulator.Datastore)
		if !ok {
			return nil, "", fmt.Errorf("datastore %s not found", p.Datastore)
		}
		flat := strings.TrimSuffix(p.Path, ".vmdk") + "-flat.vmdk"
		return disk, filepath.Join(ds.Info.GetDatastoreInfo().Url, flat), nil
	}
	return nil, "", fmt.Errorf("the VM has no disk %d", key)
}

var changedAreasThis = regexp.MustCompile(`(<(?:\w+:)?_this[^>]*type=")VirtualMachine("[^>]*>)([^<]+)<`)

// routeChangedAreas addresses each QueryChangedDiskAreas request to the VM's vmChanges
// object (registered on first use); everything else passes as it came.
func (t *changeTracker) routeChangedAreas(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/sdk") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if m := soapMethod.FindSubmatch(body); m != nil && string(m[1]) == "QueryChangedDiskAreas" {
			if found := changedAreasThis.FindSubmatch(body); found != nil {
				ref := types.ManagedObjectReference{Type: "TesseraVMChanges", Value: string(found[3])}
				if simulator.Map.Get(ref) == nil {
					simulator.Map.Put(&vmChanges{self: ref, tracker: t})
				}
				body = changedAreasThis.ReplaceAll(body, []byte("${1}TesseraVMChanges${2}${3}<"))
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// serveDisk is the lab's disk command, for the lab's operator (basic auth):
//
//	POST /tessera/lab/disk/flat?vm=<moref>&key=<device key>&size=<bytes>
//	    gives the disk a flat layout of `size` bytes (default: its capacity), all zeros
//	POST /tessera/lab/disk/write?vm=<moref>&key=<device key>&offset=<bytes>
//	    writes the request body at `offset` of the disk, as the guest would; logged for
//	    CBT while tracking is on. Answers {"change_id": ...} ("" while tracking is off).
func (t *changeTracker) serveDisk(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != t.username || pass != t.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="tessera lab"`)
		http.Error(w, "the lab's user and password are required", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: q.Get("vm")}).(*simulator.VirtualMachine)
	var key, offset, size int64
	_, keyErr := fmt.Sscan(q.Get("key"), &key)
	if !ok || keyErr != nil {
		http.Error(w, "name a VM (vm=) and one of its disks (key=)", http.StatusNotFound)
		return
	}
	disk, file, err := flatExtent(vm, int32(key))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch strings.TrimPrefix(r.URL.Path, "/tessera/lab/disk/") {
	case "flat":
		size = disk.CapacityInBytes
		if s := q.Get("size"); s != "" {
			if _, err := fmt.Sscan(s, &size); err != nil || size <= 0 || size%512 != 0 {
				http.Error(w, "size must be a positive multiple of 512", http.StatusBadRequest)
				return
			}
		}
		err = makeFlat(file, size)
		if err == nil {
			disk.CapacityInBytes, disk.CapacityInKB = size, size/1024
			delete(t.disks, diskID{vm.Self.Value, int32(key)})
		}
		writeJSON(w, err, map[string]int64{"size": size})
	case "write":
		if _, err := fmt.Sscan(q.Get("offset"), &offset); err != nil || offset < 0 {
			http.Error(w, "offset must be a byte offset", http.StatusBadRequest)
			return
		}
		data, err := io.ReadAll(r.Body)
		if err == nil && offset+int64(len(data)) > disk.CapacityInBytes {
			http.Error(w, "the write ends beyond the disk", http.StatusBadRequest)
			return
		}
		if err == nil {
			err = writeAt(file, offset, data)
		}
		changeID := ""
		if l := t.log(vm, int32(key)); err == nil && l != nil {
			l.seq++
			l.writes = append(l.writes, diskWrite{l.seq, offset, int64(len(data))})
			changeID = l.changeID()
		}
		writeJSON(w, err, map[string]string{"change_id": changeID})
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, err error, answer interface{}) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// makeFlat writes a monolithicFlat descriptor beside the flat file's name and an empty
// (sparse) flat file of `size` bytes.
func makeFlat(flat string, size int64) error {
	descriptor := strings.TrimSuffix(flat, "-flat.vmdk") + ".vmdk"
	text := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"monolithicFlat\"\n\n# Extent description\nRW %d FLAT \"%s\" 0\n\n"+
		"# The Disk Data Base\nddb.adapterType = \"lsilogic\"\n", size/512, filepath.Base(flat))
	if err := os.MkdirAll(filepath.Dir(flat), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(descriptor, []byte(text), 0o600); err != nil {
		return err
	}
	_ = os.Remove(flat)
	f, err := os.OpenFile(flat, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(size)
}

func writeAt(file string, offset int64, data []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("the disk has no flat extent (give it one with /tessera/lab/disk/flat): %w", err)
	}
	defer f.Close()
	_, err = f.WriteAt(data, offset)
	return err
}
