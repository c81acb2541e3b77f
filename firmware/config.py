# Thingwire device configuration: the only file an integrator edits.
# Copy it to the board with the rest of firmware/ (see firmware/README.md).

# --- Wi-Fi -----------------------------------------------------------------
WIFI_SSID = "my-network"          # 2.4 GHz network name
WIFI_PASSWORD = "my-password"
WIFI_TIMEOUT_S = 20               # give up one join attempt after this long, then back off

# --- Transport --------------------------------------------------------------
TRANSPORT = "mqtt"                # "mqtt" (the broker below) or "http" (the HTTP API, where MQTT is blocked)

# --- Broker (the Thingwire runtime's embedded MQTT broker) ------------------
BROKER_HOST = "192.168.1.10"      # the machine running `npm start` (HOST must not be loopback there)
BROKER_PORT = 1883                # 8883 is customary with TLS
USE_TLS = False                   # True: TLS, server checked against CA_FILE
CA_FILE = "ca.der"                # CA certificate on the board's flash (DER), used when USE_TLS
KEEPALIVE_S = 60                  # MQTT keepalive; the firmware pings when idle for half of it

# --- Identity ---------------------------------------------------------------
DEVICE_ID = "greenhouse-1"        # 1-128 of A-Z a-z 0-9 . _ : -, starting with a letter or digit
TOKEN = "paste-the-token-here"    # from POST /api/v1/devices, or "provision:<key>" (see README)

# --- Sampling and sending ---------------------------------------------------
SAMPLE_S = 5                      # read the sensors every SAMPLE_S seconds
SEND_S = 60                       # send a batch (JSON array) every SEND_S s; 0 = send every sample alone
SEND_MODE = "batch"               # "batch": every sample, SEND_S at a time; "summary": one reading per SEND_S
                                  #   window: <metric> = mean, <metric>_min, <metric>_max, samples = count
BUFFER_SIZE = 500                 # readings kept while offline; the oldest are dropped (and counted) beyond it
MAX_BATCH = 50                    # readings per message (keeps packets small for umqtt and the HTTP answer)
BUFFER_FILE = None                # e.g. "buffer.json": keep a copy of unsent readings on flash (survives resets)
BUFFER_SAVE_S = 300               # while offline, save that copy at most this often (flash wears)

# --- Sensors ----------------------------------------------------------------
DHT22_PIN = None                  # GPIO of the DHT22 data line; None = the board default (Pico W 15, ESP32 4)
USE_DHT22 = True
USE_INTERNAL_TEMP = True          # the chip's own temperature, metric "chip_temperature"

# --- Time and health --------------------------------------------------------
NTP_HOST = "pool.ntp.org"
NTP_RESYNC_S = 3600               # re-read NTP this often (the tick clock drifts)
WATCHDOG_S = 8                    # reset the board when the loop stalls this long (Pico W max 8.3 s)
LED = True                        # blink the on-board LED on each sent message

# --- HTTP (TRANSPORT = "http") ----------------------------------------------
HTTP_URL = "http://192.168.1.10:1880"   # the runtime's address (https:// works; the board checks nothing else)
HTTP_API = "native"               # "native": POST /api/v1/streams/STREAM_ID/entries (Bearer token);
                                  # "thingspeak": POST /channels/STREAM_ID/bulk_update.json (write_api_key id.token)
STREAM_ID = "greenhouse"          # the stream (ThingSpeak: channel) this device owns; create it with the API
THINGSPEAK_FIELDS = ("temperature", "humidity", "chip_temperature")  # field1, field2, ... (at most 8)
HTTP_TIMEOUT_S = 10
